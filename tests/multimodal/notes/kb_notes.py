"""The tests' small knowledge base plus what the notes tests need: ICD-10-CM's headache codes and its drug classes."""

from __future__ import annotations

from dataclasses import replace

from multimodal.knowledge.sources import Entity
from tests.multimodal.knowledge.kb_helpers import ROWS, BagOfWords

P = "Poisoning by, adverse effect of and underdosing of "
EXTRA = [
    Entity("icd10cm", "R51", "Headache", "diagnosis", "ICD-10 R51", detail="category"),
    Entity("icd10cm", "T39", P + "nonopioid analgesics, antipyretics and antirheumatics", "diagnosis", "ICD-10 T39",
           detail="category"),
    Entity("icd10cm", "T39.0", P + "salicylates", "diagnosis", "ICD-10 T39.0", detail="category", parents=["T39"]),
    Entity("icd10cm", "T39.01", P + "aspirin", "diagnosis", "ICD-10 T39.01", aliases=[P + "acetylsalicylic acid"],
           detail="category", parents=["T39.0"]),
    Entity("icd10cm", "T39.3", P + "other nonsteroidal anti-inflammatory drugs [NSAID]", "diagnosis",
           "ICD-10 T39.3", detail="category", parents=["T39"]),
    Entity("icd10cm", "T39.31", P + "propionic acid derivatives", "diagnosis", "ICD-10 T39.31",
           aliases=[P + "ibuprofen", P + "naproxen"], detail="category", parents=["T39.3"]),
    Entity("hpo", "HP:0001945", "Fever", "phenotype", "HPO:0001945"),
    Entity("hpo", "HP:0002018", "Nausea", "phenotype", "HPO:0002018"),
    Entity("drug", "DB01050", "Ibuprofen", "drug", "DrugBank DB01050", aliases=["advil", "motrin"]),
    Entity("drug", "DB00945", "Aspirin", "drug", "DrugBank DB00945", aliases=["acetylsalicylic acid"]),
    Entity("drug", "DB00586", "Diclofenac", "drug", "DrugBank DB00586"),
]
NOTES_ROWS = [replace(e, parents=["R51"]) if e.code == "R51.9" else e for e in ROWS] + EXTRA
CLASSED_NSAIDS = {"ibuprofen", "naproxen", "aspirin"}
"""The drugs this base's ICD-10-CM classes as salicylates (T39.0) or other NSAIDs (T39.3)."""


def build_notes_kb(path):
    from multimodal.knowledge.retrieve import KnowledgeBase
    from multimodal.knowledge.store import build

    encoder = BagOfWords()
    build(path, NOTES_ROWS, {"sources": {"tests": {"licence": "written for the tests"}}, "embedding": encoder.name},
          encoder.encode)
    return KnowledgeBase.open(path, encoder=encoder)
