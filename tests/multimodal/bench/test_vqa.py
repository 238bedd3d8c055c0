"""VQA tasks end to end on their fixtures: the scripted answers below must get exactly these scores.

Each expected number is worked out by hand in the comments from the rules in
multimodal/bench/scoring.py (LLaVA-Med's normalize_word, closed substring hit and open
word recall; lmms-eval's SLAKE normalize_answer and exact match).
"""

import pytest

from multimodal.bench import get_task
from multimodal.bench.command import load_split, run_task
from multimodal.bench.fixtures import write_fixture
from multimodal.bench.vqa import PROMPT_SUFFIX
from multimodal.errors import DataLayoutError
from tests.scripted import scripted


def _run(tiny_assistant, tmp_path, task, answers, **kw):
    spec = get_task(task)
    asked = []

    def script(prompt):
        (question,) = [q for q in answers if q + PROMPT_SUFFIX in prompt]
        asked.append(question)
        return [answers[question]]

    assistant = scripted(tiny_assistant, script)
    results = run_task(spec, load_split(spec, data=write_fixture(spec, tmp_path)), assistant=assistant, **kw)
    return results, asked


VQA_RAD = {
    "Is this a CT scan?": "Yes.",                         # closed "yes": hit; EM "yes" == "yes"
    "Is there contrast in the vessels?": "Yes, there is contrast.",  # closed "no": no "no" inside: miss; EM 0
    "Is there a fracture?": "I do not know.",             # closed "no": inside "not": hit; EM 0
    "Which organs are visible in the thorax?": "Lungs",   # open "lungs": recall 1; EM 1
    "On which side is the heart?": "Left side",           # open "left": recall 1; EM 0
    "In what plane is this image taken?": "Axial.",       # open "axial plane": recall 1/2; EM 0
}


def test_vqa_rad_fixture_scores(tiny_assistant, tmp_path):
    results, asked = _run(tiny_assistant, tmp_path, "vqa_rad", VQA_RAD)
    assert asked == list(VQA_RAD)  # every item asked once, in the data's order
    m = results["metrics"]
    assert (m["n"], m["closed_n"], m["open_n"]) == (6, 3, 3)
    assert m["closed_accuracy"] == pytest.approx(2 / 3)
    assert m["open_recall"] == pytest.approx(2.5 / 3)
    assert m["exact_match"] == pytest.approx(2 / 6)
    by_type = results["groups"]["answer_type"]
    assert by_type["closed"]["exact_match"] == pytest.approx(1 / 3) and by_type["open"]["exact_match"] == \
        pytest.approx(1 / 3)
    assert results["items"][2]["prediction"] == "I do not know." and results["items"][2]["closed_hit"] is True
    assert results["data"] == {"source": "local", "files": ["data/test-00000-of-00001.parquet"]}


SLAKE = {
    "Is this a CT image?": "yes",                               # CT, Abdomen, closed "Yes": hit; EM 1
    "What modality is used to take this image?": "MRI",         # MRI, Brain, open "MRI": recall 1; EM 1
    "Which is bigger in this image, left lung or right lung?": "The right lung is bigger.",  # X-Ray, Chest,
    #   closed "Right Lung": "right lung" inside: hit; EM 0 ("the right lung is bigger")
    "What disease is shown in the picture?": "Pneumonia",       # X-Ray, Lung, open "Cardiomegaly": 0; EM 0
    "Which organ is abnormal?": "liver (hepatic lesion)",       # CT, Abdomen, open "Liver": recall 1; EM 1
    "Does the picture contain the eyes?": "Nope",               # MRI, Brain, closed "No": "no" in "nope": hit;
    #   EM 1 ("nope" -> "no"). The Chinese row is left out (English only).
}


def test_slake_fixture_scores_with_breakdowns(tiny_assistant, tmp_path):
    results, asked = _run(tiny_assistant, tmp_path, "slake", SLAKE)
    assert len(asked) == 6
    m = results["metrics"]
    assert (m["n"], m["closed_n"], m["open_n"]) == (6, 3, 3)
    assert m["closed_accuracy"] == 1.0 and m["open_recall"] == pytest.approx(2 / 3)
    assert m["exact_match"] == pytest.approx(4 / 6)
    g = results["groups"]
    assert g["answer_type"]["closed"]["exact_match"] == pytest.approx(2 / 3)
    assert {k: v["exact_match"] for k, v in g["modality"].items()} == {"CT": 1.0, "MRI": 1.0, "X-Ray": 0.0}
    assert g["modality"]["X-Ray"]["closed_accuracy"] == 1.0 and g["modality"]["X-Ray"]["open_recall"] == 0.0
    assert {k: v["n"] for k, v in g["location"].items()} == {"Abdomen": 2, "Brain": 2, "Chest": 1, "Lung": 1}
    assert g["content_type"]["Abnormality"]["open_recall"] == 0.5  # Cardiomegaly 0, Liver 1
    assert results["data"]["files"] == ["test.json", "imgs.zip"]


PATHVQA = {
    "Is this tissue stained?": "yes",                     # closed "yes": hit; EM 1
    "Are nuclei visible?": "no",                          # closed "yes": miss; EM 0
    "Is there necrosis?": "No, there is none.",           # closed "no": hit; EM 0
    "What stain is used?": "Hematoxylin-eosin",           # open: recall 2/3 (hematoxylin, eosin of 3); EM 0
    "How many cells are in mitosis?": "2 cells",          # open "two" -> "2": recall 1; EM 0
}


def test_pathvqa_fixture_scores(tiny_assistant, tmp_path):
    results, _ = _run(tiny_assistant, tmp_path, "pathvqa", PATHVQA)
    m = results["metrics"]
    assert m["closed_accuracy"] == pytest.approx(2 / 3)
    assert m["open_recall"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["exact_match"] == pytest.approx(1 / 5)


def test_limit_keeps_the_first_items(tiny_assistant, tmp_path):
    results, asked = _run(tiny_assistant, tmp_path, "vqa_rad", VQA_RAD, limit=2)
    assert asked == list(VQA_RAD)[:2] and results["metrics"]["n"] == 2


def test_slake_without_english_rows_is_refused(tiny_assistant, tmp_path):
    import json

    spec = get_task("slake")
    folder = write_fixture(spec, tmp_path)
    rows = json.loads((folder / "test.json").read_text())
    (folder / "test.json").write_text(json.dumps([r for r in rows if r["q_lang"] == "zh"]))
    with pytest.raises(DataLayoutError, match="no items to score in English"):
        run_task(spec, load_split(spec, data=folder), assistant=tiny_assistant)
