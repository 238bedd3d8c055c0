"""The bundled knowledge base, built from the installed sources (slow: the first build embeds 99k names)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kb():
    from multimodal.knowledge.build import open_knowledge

    return open_knowledge()


def test_every_source_is_there_with_its_version_and_licence(kb):
    m = kb.store.manifest
    assert m["entities"] > 90_000 and set(m["sources"]) == {"icd10cm", "hpo", "drug", "usda", "ifct"}
    assert all(s["licence"] and s["version"] and s["files"] for s in m["sources"].values())
    assert "MiniLM" in m["embedding"]


def test_the_tension_headache_code(kb):
    hits = kb.search("What is the ICD-10 code for a tension headache?")
    assert hits[0].citation == "ICD-10 G44.209" and hits[0].detail == "billable"


@pytest.mark.parametrize("text,citation", [
    ("I have had terrible headaches for three days", "HPO:0002315"),
    ("my pharmacist gave me naproxen", "DrugBank DB00788"),
    ("she took paracetamol twice a day", None),
    ("a glass of cow milk", None),
])
def test_linking_names_in_a_consult(kb, text, citation):
    hits = kb.link(text)
    assert hits, text
    if citation:
        assert citation in [h.citation for h in hits]


def test_questions_it_cannot_answer_get_no_match(kb):
    for question in ("What is the capital of France?", "Who won the football world cup in 1998?",
                     "How do I reset my router password?"):
        assert kb.search(question) == [], question
