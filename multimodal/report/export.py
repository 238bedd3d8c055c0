"""A report's four files, as bytes: Markdown, JSON, the DICOM SR and the FHIR bundle (one place names them)."""

from __future__ import annotations

import json
from typing import Sequence

from .document import ImagingReport
from .study import StudyImage

FILE_NAMES = ("report.md", "report.json", "report-sr.dcm", "report-fhir.json")


def report_files(report: ImagingReport, images: Sequence[StudyImage]) -> dict[str, bytes]:
    """``{name: bytes}`` of :data:`FILE_NAMES`; the SR is read back and the FHIR bundle parsed before they are
    returned (:func:`~multimodal.report.sr.sr_bytes`, :func:`multimodal.fhir.collection`)."""
    from .fhir import fhir_bundle
    from .sr import sr_bytes

    sr = sr_bytes(report, [s.header for s in images])
    bundle = json.dumps(fhir_bundle(report), indent=1, ensure_ascii=False)
    return dict(zip(FILE_NAMES, (report.to_markdown().encode(), report.to_json().encode(), sr, bundle.encode())))
