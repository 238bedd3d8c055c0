"""ReXrank's files: the test-set JSON it publishes, and the prediction JSON a submission sends back.

ReXrank (rajpurkarlab/ReXrank) publishes each test set (MIMIC-CXR, IU X-ray,
CheXpert Plus) as one JSON object keyed by study id; each entry holds
``image_path``, ``key_image_path``, ``frontal_lateral``, ``context``,
``section_findings``, ``section_impression``, ``report`` (``"Findings: ... Impression:
..."``), ``split`` and, for MIMIC-CXR, ``subject_id``; a missing section is ``NaN``.
A submission's result file is that object with the model's report added to every
entry as ``model_prediction`` (their example ``prediction.json`` and the inference
scripts they ask for: ``inference.py <input_json> <output_json> <img_root_dir>``).
Their scoring script takes ``"Findings: {section_findings} Impression:
{section_impression}"`` as each study's reference, which :func:`reference_report`
reproduces.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import ReportsFileError

PREDICTION = "model_prediction"


def is_rexrank(data) -> bool:
    """Whether parsed JSON has ReXrank's shape: an object of study id -> object."""
    return isinstance(data, dict) and bool(data) and all(isinstance(v, dict) for v in data.values())


def reference_report(entry: dict) -> str:
    """The reference ReXrank scores a study against: ``"Findings: F Impression: I"`` (a missing section reads
    ``None``, as in their script)."""
    def section(key):
        value = entry.get(key)
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    if "section_findings" in entry or "section_impression" in entry:
        return f"Findings: {section('section_findings')} Impression: {section('section_impression')}"
    if isinstance(entry.get("report"), str):
        return entry["report"]
    raise ReportsFileError("A ReXrank entry has neither section_findings/section_impression nor report.",
                           code="rexrank_layout")


def references(data: dict) -> dict[str, str]:
    """``{study_id: reference report}`` of a ReXrank test set (or prediction file)."""
    return {study: reference_report(entry) for study, entry in data.items()}


def predictions(data: dict) -> dict[str, str]:
    """``{study_id: model_prediction}`` of a ReXrank prediction file."""
    missing = [s for s, e in data.items() if not isinstance(e.get(PREDICTION), str)]
    if missing:
        raise ReportsFileError(f"{len(missing)} of {len(data)} entries of this ReXrank file have no "
                               f"{PREDICTION} text.", code="rexrank_layout")
    return {study: entry[PREDICTION] for study, entry in data.items()}


def submission(dataset: dict, generated: dict[str, str]) -> dict:
    """ReXrank's prediction file: every entry of ``dataset`` (in its order) with ``model_prediction`` added.
    Every study needs a generated report, and every generated report a study."""
    missing = [s for s in dataset if s not in generated]
    extra = [s for s in generated if s not in dataset]
    if missing or extra:
        raise ReportsFileError(f"The generated reports and the ReXrank test set do not pair up: {len(missing)} "
                               f"studies have no report, {len(extra)} reports name no study of the set.",
                               code="ids_mismatch")
    return {study: {**entry, PREDICTION: generated[study]} for study, entry in dataset.items()}


def write_submission(path: str | Path, dataset: dict, generated: dict[str, str]) -> Path:
    """Write :func:`submission` as JSON (indented as ReXrank's own files; NaN sections stay NaN)."""
    path = Path(path)
    path.write_text(json.dumps(submission(dataset, generated), indent=4, ensure_ascii=False))
    return path
