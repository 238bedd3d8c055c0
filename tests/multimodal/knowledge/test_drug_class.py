"""A drug's class from ICD-10-CM's poisoning codes: found by its title or inclusion term, with its ancestry."""

from __future__ import annotations

import pytest

from multimodal.knowledge.drug_class import DrugClass, drug_class
from tests.multimodal.notes.kb_notes import build_notes_kb


@pytest.fixture(scope="module")
def notes_kb(tmp_path_factory):
    return build_notes_kb(tmp_path_factory.mktemp("kb") / "kb.sqlite")


def test_a_drug_named_by_an_inclusion_term_gets_that_code_and_its_ancestors(notes_kb):
    assert drug_class(notes_kb, "Ibuprofen") == DrugClass("T39.31", (
        "nonopioid analgesics, antipyretics and antirheumatics", "other nonsteroidal anti-inflammatory drugs [NSAID]",
        "propionic acid derivatives"))
    assert drug_class(notes_kb, "naproxen").name.endswith("[NSAID] > propionic acid derivatives")


def test_a_drug_named_by_a_title_gets_that_code_and_one_icd10cm_names_nowhere_gets_none(notes_kb):
    assert drug_class(notes_kb, "Aspirin") == DrugClass("T39.01", (
        "nonopioid analgesics, antipyretics and antirheumatics", "salicylates", "aspirin"))
    assert drug_class(notes_kb, "Diclofenac") is None
    assert drug_class(notes_kb, "Headache") is None
