"""Structured imaging reports: Technique from the header, the rest by the LLM under a schema, each sentence tied
to its evidence; exported as Markdown, JSON, a DICOM Comprehensive SR and a FHIR R4B DiagnosticReport
(``docs/reports.md``).

    images = read_study(["sample:RG1_UNCR.dcm"], UidMapper(key))
    report = generate_report(assistant, images, "cough for three days")
    files = report_files(report, images)   # {"report.md": b"...", "report-sr.dcm": b"...", ...}
"""

from .document import DISCLAIMER, ImagingReport, Sentence, StudyRef, Tie
from .export import FILE_NAMES, report_files
from .generate import generate_report, report_schema
from .study import StudyImage, read_study

__all__ = ["DISCLAIMER", "FILE_NAMES", "ImagingReport", "Sentence", "StudyImage", "StudyRef", "Tie",
           "generate_report", "read_study", "report_files", "report_schema"]
