"""The scoring functions against values worked out by hand from the reference harnesses' rules."""

import pytest

from multimodal.bench.scoring import (
    choice_metrics,
    choice_scores,
    closed_hit,
    exact_match,
    is_closed_answer,
    normalize_answer,
    normalize_word,
    open_recall,
    summarize,
    vqa_metrics,
    word_prf,
)


@pytest.mark.parametrize("text, expected", [
    ("The lungs.", "lungs"),                        # period dropped, article dropped
    ("No, there is none.", "no there is 0"),        # ", " touches a space: removed; "none" -> "0"
    ("Hematoxylin-eosin", "hematoxylin eosin"),     # "-" touches no space: becomes one
    ("liver (hepatic lesion)", "liver hepatic lesion"),  # " (" removed, the final ")" becomes a space
    ("1,000 cells", "1000 cells"),                  # a thousands comma: every mark is removed
    ("3.5 cm.", "3.5 cm"),                          # a decimal point stays
    ("Two", "2"),
    ("dont know", "don't know"),                    # the VQA contractions table
    ("couldnt've", "couldn't've"),
    ("An axial CT", "axial ct"),
])
def test_normalize_word_follows_llava_med(text, expected):
    assert normalize_word(text) == expected


def test_closed_hit_is_a_substring_test_as_in_llava_med():
    assert closed_hit("Yes.", "yes")
    assert closed_hit("The right lung is bigger.", "Right Lung")
    assert closed_hit("I do not know.", "no")  # "no" inside "not": counted, as the reference counts it
    assert closed_hit("No, there is none.", "no")
    assert not closed_hit("Yes, there is contrast.", "no")
    assert not closed_hit("", "yes")


@pytest.mark.parametrize("prediction, answer, prf", [
    ("left left lung", "left lung", (1.0, 1.0, 1.0)),      # tp counts the prediction's 2 + 1 occurrences
    ("Axial.", "axial plane", (2 / 3, 1.0, 0.5)),           # 1 of the answer's 2 words
    ("Hematoxylin-eosin", "hematoxylin and eosin", (0.8, 1.0, 2 / 3)),
    ("2 cells", "two", (2 / 3, 0.5, 1.0)),                  # "two" -> "2"
    ("kidney", "liver", (0.0, 0.0, 0.0)),
    ("", "liver", (0.0, 0.0, 0.0)),
])
def test_word_prf_and_open_recall(prediction, answer, prf):
    assert word_prf(prediction, answer) == pytest.approx(prf)
    assert open_recall(prediction, answer) == pytest.approx(prf[2])


@pytest.mark.parametrize("text, expected", [
    ("The right lung is bigger.", "the right lung is bigger"),
    ("liver (hepatic lesion)", "liver"),
    ("X-Ray", "xray"),
    ("Nope", "no"),
    ("true", "yes"),
    ("是", "yes"),
    ("  MRI  ", "mri"),
    (None, ""),
])
def test_normalize_answer_follows_lmms_eval_slake(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_and_closed_answers():
    assert exact_match("X ray", "x-ray") and exact_match("Lungs", "lungs.") and exact_match("yeah", "Yes")
    assert not exact_match("The lungs.", "lungs")  # the article stays in lmms-eval's normalisation
    assert is_closed_answer("Yes") and is_closed_answer("no.") and not is_closed_answer("left")


def test_choice_scores_acc_and_acc_norm_as_lm_eval():
    # PubMedQA's choices: lengths 3, 2, 5 -> per character -1.0, -1.45, -0.8
    scores = choice_scores([-3.0, -2.9, -4.0], ["yes", "no", "maybe"], 2)
    assert scores == {"pred": 1, "pred_norm": 2, "acc": 0.0, "acc_norm": 1.0}
    # a tie goes to the first choice, as np.argmax
    assert choice_scores([-2.0, -2.0, -2.0, -2.0], ["A", "B", "C", "D"], 2)["pred"] == 0
    with pytest.raises(ValueError):
        choice_scores([-1.0], ["A", "B"], 0)
    with pytest.raises(ValueError):
        choice_scores([-1.0, -2.0], ["A", "B"], 2)


def test_summaries_per_group_and_null_for_no_items():
    records = [
        {"answer_type": "closed", "exact_match": True, "closed_hit": True, "open_recall": None, "modality": "CT"},
        {"answer_type": "closed", "exact_match": False, "closed_hit": False, "open_recall": None, "modality": "MRI"},
        {"answer_type": "open", "exact_match": False, "closed_hit": None, "open_recall": 0.5, "modality": "CT"},
    ]
    out = summarize(records, vqa_metrics, ("answer_type", "modality", "location"))
    assert out["metrics"] == {"n": 3, "exact_match": pytest.approx(1 / 3), "closed_n": 2, "closed_accuracy": 0.5,
                              "open_n": 1, "open_recall": 0.5}
    assert out["groups"]["answer_type"]["open"]["closed_accuracy"] is None
    assert out["groups"]["modality"]["CT"]["n"] == 2 and out["groups"]["modality"]["MRI"]["exact_match"] == 0.0
    assert "location" not in out["groups"]  # no item has one
    assert choice_metrics([{"acc": 1.0, "acc_norm": 0.0}, {"acc": 0.0, "acc_norm": 0.0}]) == \
        {"n": 2, "acc": 0.5, "acc_norm": 0.0}
