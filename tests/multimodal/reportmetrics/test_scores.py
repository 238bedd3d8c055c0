"""Label F1 against a hand computation, the two ways of counting uncertain labels, BLEU-4 and ROUGE-L."""

import pytest

from multimodal.reportmetrics import FIVE, agreement, bleu4, label_f1, rouge_l

GEN = [{"Edema": 1, "Cardiomegaly": -1}, {"Edema": 1}, {"Pneumothorax": 0, "Cardiomegaly": 1}]
REF = [{"Edema": 1, "Cardiomegaly": 1}, {"Edema": None}, {"Pneumothorax": 1, "Cardiomegaly": -1}]


def test_label_f1_matches_a_hand_computation_with_uncertain_as_positive():
    out = label_f1(GEN, REF, "positive")
    # Edema: TP 1 (report 1), FP 1 (report 2) -> P 1/2, R 1, F1 2/3.
    assert out["per_label"]["Edema"] == {"tp": 1, "fp": 1, "fn": 0, "support": 1, "precision": 0.5,
                                         "recall": 1.0, "f1": pytest.approx(2 / 3)}
    # Cardiomegaly: -1 vs 1 and 1 vs -1 both count -> TP 2, F1 1. Pneumothorax: FN 1, F1 0.
    assert out["per_label"]["Cardiomegaly"]["f1"] == 1.0 and out["per_label"]["Pneumothorax"]["f1"] == 0.0
    # Micro: TP 3, FP 1, FN 1 -> 6/8. Macro: mean of 2/3, 1, 0 over the 3 labels positive somewhere.
    assert out["all14"]["micro_f1"] == pytest.approx(6 / 8)
    assert out["all14"]["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3) and out["all14"]["labels_averaged"] == 3
    assert out["per_label"]["Fracture"]["f1"] is None  # positive nowhere: undefined, left out of the macro
    assert set(FIVE) == {"Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"}
    assert out["five"]["labels_averaged"] == 2


def test_strict_counting_treats_uncertain_as_negative():
    out = label_f1(GEN, REF, "negative")
    # Cardiomegaly: gen -1/1 vs ref 1/-1 -> FN 1 (report 1), FP 1 (report 3) -> F1 0.
    assert out["per_label"]["Cardiomegaly"] | {} == {"tp": 0, "fp": 1, "fn": 1, "support": 1, "precision": 0.0,
                                                    "recall": 0.0, "f1": 0.0}
    assert out["uncertain"] == "negative"


def test_identical_labels_score_one():
    out = label_f1(REF, REF)
    assert out["all14"]["micro_f1"] == 1.0 and out["all14"]["macro_f1"] == 1.0


def test_agreement_scores_each_value_as_its_own_class():
    gold = [{"Edema": 1, "Cardiomegaly": 0}, {"Edema": -1}]
    pred = [{"Edema": 1, "Cardiomegaly": -1}, {"Edema": -1}]
    out = agreement(pred, gold)
    assert out["positive"]["micro_f1"] == 1.0 and out["mention"]["micro_f1"] == 1.0
    assert out["negative"]["micro_f1"] == 0.0  # the one 0 was read as -1
    assert out["uncertain"]["per_label"]["Cardiomegaly"]["fp"] == 1
    assert out["exact_cells"] == pytest.approx(27 / 28) and out["exact_reports"] == 0.5


def test_bleu4_on_known_pairs():
    assert bleu4(["the heart is normal in size ."], ["the heart is normal in size ."]) == pytest.approx(1.0)
    assert bleu4(["no pleural effusion"], ["moderate cardiomegaly"]) == 0.0
    # 5 of 6 unigrams, 3/5 bigrams, 1/4 trigrams, 0/3 4-grams, which sacrebleu's default "exp" smoothing counts
    # as 1/(2 x 3); same length: no brevity penalty.
    got = bleu4(["the heart is not enlarged ."], ["the heart is mildly enlarged ."])
    assert got == pytest.approx((5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25, abs=1e-6)


def test_rouge_l_is_the_lcs_f_measure():
    assert rouge_l(["no pleural effusion"], ["no pleural effusion"]) == pytest.approx(1.0)
    # LCS "heart normal" = 2 of 4 generated and 2 of 3 reference tokens: P 1/2, R 2/3, F 4/7.
    assert rouge_l(["heart size normal today"], ["heart is normal"]) == pytest.approx(4 / 7)
    assert rouge_l([], []) == 0.0
