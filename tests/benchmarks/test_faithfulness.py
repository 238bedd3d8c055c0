"""The faithfulness benchmark: its cases and scorer, and a CI-sized run holding the default stack to its targets."""

import pytest

from benchmarks.faithfulness import Case, all_cases, score, summarize
from multimodal.evidence import note_evidence


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return all_cases(tmp_path_factory.mktemp("dicom"))


def test_at_least_sixty_cases_across_the_workspaces(cases):
    counts = {ws: sum(c.workspace == ws for c in cases) for ws in ("consult", "photo", "dicom", "meal")}
    assert counts == {"consult": 20, "photo": 20, "dicom": 16, "meal": 12} and len(cases) >= 60
    assert len({c.id for c in cases}) == len(cases)
    consult = cases[0]
    assert set(consult.expect) == {"symptom", "medicine", "duration"} and consult.expect["duration"]
    close = [c for c in cases if c.workspace == "photo" and c.labels[1][1] >= 0.5 * c.labels[0][1]]
    assert len(close) == 6  # close runners-up
    dicom = [c for c in cases if c.workspace == "dicom"]
    assert {c.expect["modality"][0] for c in dicom} >= {"CR", "DX", "CT", "MR", "US"}


def test_consult_scoring():
    t = "I have had a sore throat for three days. I took ibuprofen."
    ev = [note_evidence("Consultation", t)]
    case = Case("c", "consult", "q", expect={"symptom": ("sore throat",), "medicine": ("ibuprofen",),
                                                "duration": ("3 day",)})
    good = score(case, "The patient has had a sore throat for 3 days and took ibuprofen.", ev)
    assert good == {"recall": True, "contradictions": [], "numbers": (0, 0)}
    bad = score(case, "The patient has a headache for two days and took paracetamol.", ev)
    assert not bad["recall"]
    assert bad["contradictions"] == ["duration 2 day", "medicine paracetamol", "symptom headache"]
    assert score(case, "A sore throat for three days, not a headache; ibuprofen.", ev)["contradictions"] == []


def test_photo_scoring_reads_the_first_food_named():
    case = Case("p", "photo", "q", expect={"food": ("strawberry",)},
                labels=[("strawberry", 0.95), ("trifle", 0.02), ("fig", 0.001)])
    assert score(case, "Strawberries.", [])["contradictions"] == []
    assert score(case, "A trifle with strawberries.", [])["contradictions"] == ["first food trifle", "runner-up trifle"]
    close = Case("p", "photo", "q", expect={"food": ("banana",)}, labels=[("banana", 0.55), ("corn on the cob", 0.4)])
    assert score(close, "Banana, or perhaps corn on the cob.", [])["contradictions"] == []


def test_dicom_and_meal_scoring():
    case = Case("d", "dicom", "q", expect={"modality": ("DX",), "body_part": ("KNEE",)})
    assert score(case, "A knee X-ray.", [])["recall"]
    assert score(case, "An MRI of the knee showing a fracture.", [])["contradictions"] == ["finding fracture",
                                                                                          "modality MR"]
    meal = Case("m", "meal", "q", number=(34.0, "mg"))
    ev = [note_evidence("Nutrient table", "sodium 34 mg (1% of the 2300 mg daily value); fibre 2.6 g")]
    good = score(meal, "It has 34 mg of sodium, 1% of the 2300 mg daily value.", ev)
    assert good == {"recall": True, "contradictions": [], "numbers": (3, 3)}
    assert score(meal, "It has 34 mg of sodium and about 3 g of fibre.", ev)["contradictions"] == []  # 2.6 rounded
    bad = score(meal, "It has 34 mg of sodium and 5 g of fibre.", ev)
    assert bad["contradictions"] == ["number 5"] and bad["numbers"] == (1, 2)
    rows = [{"workspace": "meal", "s": good}, {"workspace": "meal", "s": bad}]
    s = summarize(rows, "s")
    assert (s["recall"], s["contradiction"], s["numbers_right"], s["numbers_quoted"], s["meals_all_right"]) == \
        (1.0, 0.5, 4, 5, 1)


@pytest.mark.slow
def test_the_default_stack_keeps_to_its_evidence(cases):
    """Four cases per workspace through the real default stack (the full table: benchmarks/faithfulness.py)."""
    from benchmarks.faithfulness import run_llm

    subset = [c for ws in ("consult", "photo", "dicom", "meal") for c in [c for c in cases if c.workspace == ws][:4]]
    result = run_llm("embedded", subset, max_new_tokens=128)
    shown = summarize(result["rows"], "guarded_score")
    assert result["backend"] == "llama.cpp"
    assert shown["recall"] >= 0.9 and shown["contradiction"] == 0.0
    assert shown["numbers_right"] == shown["numbers_quoted"]
