"""The extraction benchmark's scoring: a finding is right when note, kind, name and negation all match."""

from __future__ import annotations

import pytest

from benchmarks.extraction import found_keys, score, truth_cohort, truth_keys


def test_precision_and_recall_count_a_wrong_negation_as_one_miss_and_one_false_finding():
    notes = [{"note_id": "a", "patient_id": "P1", "findings": [
        {"kind": "problem", "name": "headache", "negated": False, "uncertain": False},
        {"kind": "problem", "name": "fever", "negated": True, "uncertain": False},
        {"kind": "medication", "name": "ibuprofen", "said": "Advil", "negated": False, "nsaid": True}]}]
    rows = [{"note_id": "a", "kind": "problem", "text": "Headache", "concept": "Headache", "negated": False},
            {"note_id": "a", "kind": "problem", "text": "fever", "concept": "Fever", "negated": False},
            {"note_id": "a", "kind": "medication", "text": "Advil", "concept": "Ibuprofen", "negated": False}]
    s = score(found_keys(rows), truth_keys(notes))
    assert s["problem"]["precision"] == s["problem"]["recall"] == 0.5
    assert s["medication"]["f1"] == 1.0 and s["allergy"]["found"] == 0
    assert s["all"]["precision"] == pytest.approx(2 / 3) and truth_cohort(notes) == {"P1"}
