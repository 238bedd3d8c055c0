"""A small knowledge base built from rows written here, with a deterministic bag-of-words encoder."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from multimodal.knowledge.sources import Entity

ROWS = [
    Entity("icd10cm", "G44.2", "Tension-type headache", "diagnosis", "ICD-10 G44.2", detail="category"),
    Entity("icd10cm", "G44.209", "Tension-type headache, unspecified, not intractable", "diagnosis",
           "ICD-10 G44.209", aliases=["Tension headache NOS", "Tension headache"], detail="billable",
           parents=["G44.2"]),
    Entity("icd10cm", "R51.9", "Headache, unspecified", "diagnosis", "ICD-10 R51.9", aliases=["Facial pain NOS"],
           detail="billable"),
    Entity("icd10cm", "E11", "Type 2 diabetes mellitus", "diagnosis", "ICD-10 E11", detail="category"),
    Entity("icd10cm", "E11.65", "Type 2 diabetes mellitus with hyperglycemia", "diagnosis", "ICD-10 E11.65",
           detail="billable", parents=["E11"]),
    Entity("icd10cm", "E11.8", "Type 2 diabetes mellitus with unspecified complications", "diagnosis",
           "ICD-10 E11.8", detail="billable", parents=["E11"]),
    Entity("icd10cm", "E11.9", "Type 2 diabetes mellitus without complications", "diagnosis", "ICD-10 E11.9",
           detail="billable", parents=["E11"]),
    Entity("hpo", "HP:0002315", "Headache", "phenotype", "HPO:0002315", aliases=["Headaches", "Cephalgia"],
           detail="Pain sensed in various parts of the head"),
    Entity("hpo", "HP:0012531", "Pain", "phenotype", "HPO:0012531"),
    Entity("disease", "OMIM:157300", "Migraine with or without aura 1", "disease", "OMIM:157300",
           links=[("has_phenotype", "HPO:0002315")]),
    Entity("drug", "DB00788", "Naproxen", "drug", "DrugBank DB00788", aliases=["aleve", "naprosyn"],
           detail="drugbank DB00788, medline plus a681029"),
    Entity("drug", "DB00773", "Etoposide", "drug", "DrugBank DB00773", aliases=["lastet", "vepesid"],
           detail="drugbank DB00773"),
    Entity("drug", "DB10563", "Rice", "drug", "DrugBank DB10563", detail="allergenic extract", linkable=False),
    Entity("drug", "DB00316", "Acetaminophen", "drug", "DrugBank DB00316", aliases=["paracetamol", "tylenol"],
           detail="drugbank DB00316"),
    Entity("usda", "173944", "banana", "food", "USDA FDC 173944", aliases=["bananas", "Bananas, raw"],
           detail="per 100 g: 89 kcal, 1.09 g protein, 358 mg potassium"),
    Entity("ifct", "L002", "Milk, whole, Cow", "food", "IFCT L002", aliases=["Gai ka doodh"],
           detail="Milk and Milk Products; per 100 g: 72.9 kcal, 3.26 g protein"),
]


class BagOfWords:
    """Hashed word counts, unit norm: close texts share words (a stand-in for MiniLM in tests)."""

    name = "bag-of-words (tests)"

    def encode(self, texts, batch_size: int = 256) -> np.ndarray:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 384] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


def build_small(path):
    from multimodal.knowledge.retrieve import KnowledgeBase
    from multimodal.knowledge.store import build

    encoder = BagOfWords()
    build(path, ROWS, {"sources": {"tests": {"licence": "written for the tests"}}, "embedding": encoder.name},
          encoder.encode)
    return KnowledgeBase.open(path, encoder=encoder)
