"""The rule labeler: mentions per label, negation and its scope, uncertainty, No Finding, and the fixture."""

import pytest

from multimodal.reportmetrics import LABELS, check_labeler, label, mentions


def given(text: str) -> dict:
    """The labels ``text`` sets (blank ones left out)."""
    return {k: v for k, v in label(text).items() if v is not None}


def test_every_report_gets_all_14_labels_and_blank_is_none():
    out = label("Small right pneumothorax.")
    assert list(out) == list(LABELS)
    assert out["Pneumothorax"] == 1 and out["Edema"] is None and out["No Finding"] is None


@pytest.mark.parametrize("text, name", [
    ("Left lower lobe atelectasis.", "Atelectasis"), ("Right upper lobe collapse.", "Atelectasis"),
    ("Moderate cardiomegaly.", "Cardiomegaly"), ("Patchy consolidation at the right base.", "Consolidation"),
    ("Mild interstitial edema.", "Edema"), ("Widened mediastinum.", "Enlarged Cardiomediastinum"),
    ("Acute fracture of the left clavicle.", "Fracture"), ("A 2 cm nodule in the left upper lobe.", "Lung Lesion"),
    ("Hazy opacity in the right lower zone.", "Lung Opacity"), ("Small right pleural effusion.", "Pleural Effusion"),
    ("Bilateral pleural plaques.", "Pleural Other"), ("Right lower lobe pneumonia.", "Pneumonia"),
    ("Large left pneumothorax.", "Pneumothorax"), ("Right PICC line tip in the SVC.", "Support Devices"),
])
def test_each_finding_label_has_mentions(text, name):
    assert label(text)[name] == 1


@pytest.mark.parametrize("text, name", [
    ("No pleural effusion.", "Pleural Effusion"), ("Pneumothorax is not seen.", "Pneumothorax"),
    ("Lungs are clear without consolidation.", "Consolidation"), ("Negative for acute fracture.", "Fracture"),
    ("The small left effusion has resolved.", "Pleural Effusion"), ("The heart is normal in size.", "Cardiomegaly"),
    ("Normal cardiomediastinal silhouette.", "Enlarged Cardiomediastinum"),
    ("The nasogastric tube has been removed.", "Support Devices"),
    ("Free of focal consolidation.", "Consolidation"), ("No evidence of pulmonary edema.", "Edema"),
])
def test_negations_before_and_after_the_mention(text, name):
    assert label(text)[name] == 0


def test_a_negation_covers_a_list_and_stops_at_but_and_at_the_sentence_end():
    assert given("No effusion, pneumothorax or consolidation.") == {
        "Pleural Effusion": 0, "Pneumothorax": 0, "Consolidation": 0, "No Finding": 1}
    assert given("No effusion but cardiomegaly.") == {"Pleural Effusion": 0, "Cardiomegaly": 1}
    assert given("No pneumothorax. Small effusion.") == {"Pneumothorax": 0, "Pleural Effusion": 1}
    assert given("Normal heart size, large right effusion.") == {"Cardiomegaly": 0, "Pleural Effusion": 1}


@pytest.mark.parametrize("text, name", [
    ("Possible pneumonia.", "Pneumonia"), ("Pneumonia cannot be excluded.", "Pneumonia"),
    ("Cannot exclude a small effusion.", "Pleural Effusion"), ("Opacity may represent atelectasis.", "Atelectasis"),
    ("Findings concerning for pneumonia.", "Pneumonia"), ("Atelectasis versus consolidation.", "Consolidation"),
    ("Atelectasis or pneumonia.", "Atelectasis"), ("Mild pulmonary vascular congestion.", "Edema"),
    ("No new consolidation.", "Consolidation"), ("Heart size is borderline.", "Cardiomegaly"),
    ("Stable appearance of the cardiac silhouette.", "Cardiomegaly"), ("Infection is suspected.", "Pneumonia"),
])
def test_uncertainty_gives_minus_one(text, name):
    assert label(text)[name] == -1


def test_pseudo_negation_and_unmentions_are_not_negations_or_findings():
    assert given("No change in the small left pleural effusion.") == {"Pleural Effusion": 1}
    assert given("Pericardial effusion. No pleural effusion.") == {"Pleural Effusion": 0}  # and No Finding blank
    assert given("Catheter tip projects over the heart.") == {"Support Devices": 1, "No Finding": 1}
    assert given("Calcified granuloma in the left upper lobe.") == {}


def test_mentions_aggregate_positive_over_uncertain_over_negative():
    assert label("No effusion on the left. Small right effusion.")["Pleural Effusion"] == 1
    assert label("No effusion on the left. Possible right effusion.")["Pleural Effusion"] == -1
    assert [(m.label, m.value) for m in mentions("No pneumothorax. Possible pneumonia.")] == [
        ("Pneumothorax", 0), ("Pneumonia", -1)]


def test_heart_failure_adds_an_uncertain_cardiomegaly():
    assert given("Findings of congestive heart failure.") == {"Edema": 1, "Cardiomegaly": -1}


def test_no_finding_is_positive_only_without_other_findings_and_ignores_devices():
    assert label("No acute cardiopulmonary process.")["No Finding"] == 1
    assert label("Endotracheal tube 4 cm above the carina. Lungs are clear.")["No Finding"] == 1
    assert label("Possible small effusion.")["No Finding"] is None  # an uncertain finding
    assert label("Severe emphysema. No pneumothorax.")["No Finding"] is None  # a finding outside the 14
    assert label("No emphysema.")["No Finding"] == 1
    assert 0 not in [label(t)["No Finding"] for t in ("Large effusion.", "Normal.", "")]


@pytest.mark.parametrize("split", ["dev", "test"])
def test_the_labeler_against_the_hand_labelled_fixture(split):
    """Regression guard on the numbers docs/report-metrics.md reports (the rules were developed on dev; the
    test half was written before them: its first run had 29 of 30 reports exact)."""
    result = check_labeler(split)
    assert result["reports"] == 30
    assert result["exact_reports"] >= (1.0 if split == "dev" else 0.95), result["wrong"]
    for task in ("mention", "positive", "negative", "uncertain"):
        assert result[task]["micro_f1"] >= 0.95, task
