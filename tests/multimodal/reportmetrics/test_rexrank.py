"""ReXrank's files: references as their script builds them, the submission's shape, ids that do not pair up."""

import json
import math

import pytest

from multimodal.errors import ReportsFileError
from multimodal.reportmetrics import rexrank

# The layout of ReXrank's published test sets (values written for this test).
DATASET = {
    "s1": {"image_path": ["/p1/s1/a.jpg", "/p1/s1/b.jpg"], "section_findings": "No pleural effusion.",
           "section_impression": "No acute process.", "frontal_lateral": ["postero-anterior", "lateral"],
           "split": "test", "subject_id": 1, "context": "Indication: cough.", "key_image_path": "/p1/s1/a.jpg",
           "report": "Findings: No pleural effusion. Impression: No acute process."},
    "s2": {"image_path": ["/p2/s2/c.jpg"], "section_findings": "Small right pneumothorax.",
           "section_impression": float("nan"), "frontal_lateral": ["antero-posterior"], "split": "test",
           "subject_id": 2, "context": "Indication: chest tube.", "key_image_path": "/p2/s2/c.jpg",
           "report": "Findings: Small right pneumothorax. Impression: None."},
}


def test_reference_reports_are_built_as_rexranks_scoring_script_does():
    assert rexrank.references(DATASET) == {"s1": "Findings: No pleural effusion. Impression: No acute process.",
                                           "s2": "Findings: Small right pneumothorax. Impression: None"}
    assert rexrank.reference_report({"report": "Findings: x. Impression: y."}) == "Findings: x. Impression: y."
    with pytest.raises(ReportsFileError):
        rexrank.reference_report({"context": "no report"})


def test_a_submission_is_the_test_set_with_model_prediction_added(tmp_path):
    path = rexrank.write_submission(tmp_path / "sub.json", DATASET, {"s2": "Right pneumothorax.", "s1": "Normal."})
    back = json.loads(path.read_text())
    assert list(back) == ["s1", "s2"]  # the test set's order
    for study, entry in back.items():
        assert set(entry) == set(DATASET[study]) | {"model_prediction"}
    assert back["s2"]["model_prediction"] == "Right pneumothorax." and math.isnan(back["s2"]["section_impression"])
    assert rexrank.is_rexrank(back) and rexrank.predictions(back) == {"s1": "Normal.", "s2": "Right pneumothorax."}


def test_every_study_needs_a_report_and_every_report_a_study():
    with pytest.raises(ReportsFileError, match="1 studies have no report, 1 reports name no study") as caught:
        rexrank.submission(DATASET, {"s1": "Normal.", "s9": "Other."})
    assert caught.value.code == "ids_mismatch"
    with pytest.raises(ReportsFileError, match="no model_prediction"):
        rexrank.predictions(DATASET)
