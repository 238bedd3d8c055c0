"""Multiple-choice tasks end to end on their fixtures, with scripted log-likelihoods and hand-worked scores,
and lm-eval's prompts checked word for word."""

import pytest

from multimodal.bench import MMLU_MEDICAL, get_task
from multimodal.bench.choice import choice_items
from multimodal.bench.command import load_split, run_task
from multimodal.bench.fixtures import write_fixture
from multimodal.errors import DataLayoutError

from .conftest import ScriptedLikelihoods


def _run(tiny_llm, tmp_path, task, table, **kw):
    spec = get_task(task)
    backend = ScriptedLikelihoods(tiny_llm[1], table)
    return run_task(spec, load_split(spec, data=write_fixture(spec, tmp_path)), backend=backend,
                    tokenizer=tiny_llm[1], **kw)


def _letters(lls):
    return dict(zip("ABCD", lls))


MEDQA = {
    "Which hormone is deficient?": _letters([-1, -2, -3, -4]),                 # gold A, picks A: right (step1)
    "Which coronary artery": _letters([-0.5, -1.5, -2, -2]),                   # gold B, picks A: wrong (step2&3)
    "Which vitamin deficiency causes scurvy?": _letters([-3, -3, -3, -1]),     # gold D, picks D: right (step1)
    "What is the most likely diagnosis?": _letters([-2, -2, -2, -2]),          # gold C, tie -> A: wrong (step2&3)
}


def test_medqa_fixture_scores(tiny_llm, tmp_path):
    results = _run(tiny_llm, tmp_path, "medqa_4options", MEDQA)
    assert results["metrics"] == {"n": 4, "acc": 0.5, "acc_norm": 0.5}  # one-letter choices: acc_norm = acc
    assert results["groups"]["meta_info"] == {"step1": {"n": 2, "acc": 1.0, "acc_norm": 1.0},
                                              "step2&3": {"n": 2, "acc": 0.0, "acc_norm": 0.0}}
    assert [r["pred"] for r in results["items"]] == [0, 0, 3, 0]


PUBMEDQA = {  # choices yes / no / maybe: 3, 2, 5 characters
    "daily walking": {"yes": -1.0, "no": -2.0, "maybe": -3.0},   # gold yes; acc yes (right); per char -.33 -1 -.6: yes
    "short course": {"yes": -3.0, "no": -2.9, "maybe": -4.0},    # gold maybe; acc no (wrong); -1 -1.45 -.8: maybe
    "vitamin E": {"yes": -2.0, "no": -1.8, "maybe": -2.5},       # gold no; acc no (right); -.67 -.9 -.5: maybe
    "reminder letter": {"yes": -0.2, "no": -1.0, "maybe": -3.0},  # gold no; acc yes (wrong); -.07 -.5 -.6: yes
}


def test_pubmedqa_fixture_acc_and_acc_norm_differ(tiny_llm, tmp_path):
    results = _run(tiny_llm, tmp_path, "pubmedqa", PUBMEDQA)
    assert results["metrics"] == {"n": 4, "acc": 0.5, "acc_norm": 0.5}
    assert [(r["acc"], r["acc_norm"]) for r in results["items"]] == [(1, 1), (0, 1), (1, 0), (0, 0)]
    assert results["groups"]["final_decision"] == {"maybe": {"n": 1, "acc": 0.0, "acc_norm": 1.0},
                                                   "no": {"n": 2, "acc": 0.5, "acc_norm": 0.0},
                                                   "yes": {"n": 1, "acc": 1.0, "acc_norm": 1.0}}
    assert results["split"] == "train" and results["data"]["files"] == ["pqa_labeled/train-00000-of-00001.parquet"]


def _pick(letter):
    return {c: (-0.5 if c == letter else -2.0) for c in "ABCD"}


MMLU = {  # the scripted pick per question; the gold answers are in the fixture
    "longest in the human body": _pick("B"), "lateral rectus": _pick("C"),         # anatomy: B, C right: 2/2
    "respiratory rate": _pick("B"), "intramuscular injection": _pick("D"),         # clinical: B right, A: 1/2
    "carries most of the oxygen": _pick("A"), "oxidative phosphorylation": _pick("A"),  # college med: 0/2
    "cystic fibrosis": _pick("B"), "somatic cell": _pick("C"),                     # genetics: 2/2
    "opioid overdose": _pick("C"), "anaphylaxis": _pick("A"),                      # professional: A right: 1/2
    "pairs with adenine": _pick("D"), "identical daughter cells": _pick("A"),      # biology: D right: 1/2
}


def test_mmlu_medical_pools_items_and_breaks_down_by_subject(tiny_llm, tmp_path):
    results = _run(tiny_llm, tmp_path, "mmlu_medical", MMLU)
    assert results["metrics"] == {"n": 12, "acc": pytest.approx(7 / 12), "acc_norm": pytest.approx(7 / 12)}
    acc = {s: g["acc"] for s, g in results["groups"]["subject"].items()}
    assert acc == {"anatomy": 1.0, "clinical_knowledge": 0.5, "college_biology": 0.5, "college_medicine": 0.0,
                   "medical_genetics": 1.0, "professional_medicine": 0.5}
    assert len(results["data"]["files"]) == len(MMLU_MEDICAL)


def test_one_mmlu_subject_and_limit(tiny_llm, tmp_path):
    results = _run(tiny_llm, tmp_path, "mmlu_college_medicine", MMLU)
    assert results["metrics"] == {"n": 2, "acc": 0.0, "acc_norm": 0.0}
    assert results["data"]["files"] == ["college_medicine/test-00000-of-00001.parquet"]
    assert _run(tiny_llm, tmp_path, "mmlu_medical", MMLU, limit=1)["metrics"]["n"] == 6  # one per subject


def test_prompts_are_lm_evals(tmp_path):
    spec = get_task("mmlu_anatomy")
    (item, _) = choice_items(spec, "anatomy", load_split(spec, data=write_fixture(spec, tmp_path))[0][1])
    assert item.context == ("The following are multiple choice questions (with answers) about anatomy.\n\n"
                            "Which bone is the longest in the human body?\n"
                            "A. Humerus\nB. Femur\nC. Tibia\nD. Radius\nAnswer:")
    assert item.choices == ("A", "B", "C", "D") and item.gold == 1
    spec = get_task("medqa_4options")
    item = choice_items(spec, "", load_split(spec, data=write_fixture(spec, tmp_path / "m"))[0][1])[2]
    assert item.context == ("Question: Which vitamin deficiency causes scurvy?\nA. Vitamin A\nB. Vitamin B12\n"
                            "C. Vitamin D\nD. Vitamin C\nAnswer:")
    spec = get_task("pubmedqa")
    item = choice_items(spec, "pqa_labeled", load_split(spec, data=write_fixture(spec, tmp_path / "p"))[0][1])[2]
    assert item.context == ("Abstract: Older adults took vitamin E or placebo for five years.\n"
                            "The incidence of cataract did not differ between the groups.\n"
                            "Question: Does vitamin E supplementation prevent cataract in older adults?\nAnswer:")
    assert item.choices == ("yes", "no", "maybe") and item.gold == 1


def test_medqa_hf_twin_layout_gives_the_same_items():
    from multimodal.bench.loaders import Loaded

    spec = get_task("medqa_4options")
    published = {"question": "Q?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"}, "answer_idx": "C",
                 "meta_info": "step1", "answer": "c"}
    twin = {"sent1": "Q?", "ending0": "a", "ending1": "b", "ending2": "c", "ending3": "d", "label": 2}
    (a,), (b,) = (choice_items(spec, "", Loaded([row], "local")) for row in (published, twin))
    assert (a.context, a.gold) == (b.context, b.gold) == ("Question: Q?\nA. a\nB. b\nC. c\nD. d\nAnswer:", 2)


def test_a_row_without_the_published_columns_is_refused():
    from multimodal.bench.loaders import Loaded

    with pytest.raises(DataLayoutError, match="Row 0 of mmlu_anatomy"):
        choice_items(get_task("mmlu_anatomy"), "anatomy", Loaded([{"question": "Q?", "answer": 1}], "local"))
