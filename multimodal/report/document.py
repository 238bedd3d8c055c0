"""A structured imaging report: four sections of sentences, each tied to the evidence it rests on.

:class:`ImagingReport` is what :func:`multimodal.report.generate.generate_report`
returns and every export reads: Markdown for people, JSON for systems
(``medany.imaging-report/v1``), the DICOM SR (:mod:`.sr`) and the FHIR bundle
(:mod:`.fhir`). A :class:`Sentence` says who wrote it (``medany``: built from the
header or MedAny's own rules; ``llm``: generated under the report's JSON schema
and kept by the grounding check) and what it rests on (:class:`Tie`: a header
field, a classifier line, a knowledge-base row ...). A generated sentence that
rests on no single line says so: its ties are empty.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

DISCLAIMER = (
    "Research use only. MedAny is not a medical device and does not give diagnoses or treatment "
    "advice; every output must be checked by a qualified clinician."
)
SCHEMA = "medany.imaging-report/v1"
SECTIONS = ("technique", "findings", "impression", "limitations")
TITLES = {"technique": "Technique", "findings": "Findings", "impression": "Impression", "limitations": "Limitations"}


@dataclass(frozen=True)
class Tie:
    """One piece of evidence a sentence rests on."""

    source: str
    """``dicom`` (a header field), ``classifier``, ``transcript``, ``note``, ``tool``, ``knowledge`` (a row),
    ``file`` (a photo's own format) or ``medany`` (MedAny's own rule: the disclaimer, what no model did)."""
    label: str
    """Which input: ``Image 1``, ``Knowledge``, ``MedAny`` ..."""
    ref: str
    """The header field (``BodyPartExamined``), the row's citation (``ICD-10 J18.9``) or ``line``."""
    value: str
    """The field's value, or the line as the LLM read it."""

    def describe(self) -> str:
        """``"Image 1 DICOM header BodyPartExamined = CHEST"`` / ``"knowledge row [ICD-10 J18.9] ..."``."""
        if self.source == "dicom":
            return f"{self.label} DICOM header {self.ref} = {self.value}"
        if self.source == "knowledge":
            return f"knowledge row [{self.ref}]: {self.value}" if self.ref != "line" else f"knowledge: {self.value}"
        if self.source == "medany":
            return f"MedAny: {self.value}"
        if self.source == "file":
            return f"{self.label} file {self.ref} = {self.value}"
        return f"{self.label} {self.source} line: {self.value}"


@dataclass
class Sentence:
    """One sentence of a section, who wrote it, and what it rests on."""

    text: str
    ties: list[Tie] = field(default_factory=list)
    by: str = "llm"
    """``llm`` (generated under the schema, kept by the grounding check) or ``medany`` (header, rules)."""


@dataclass
class StudyRef:
    """The de-identified DICOM identity of one input image (None fields for a photo)."""

    label: str
    study_uid: str | None = None
    series_uid: str | None = None
    sop_uid: str | None = None
    sop_class_uid: str | None = None


@dataclass
class ImagingReport:
    """Technique, Findings, Impression and Limitations of one study, with their evidence."""

    question: str = ""
    technique: list[Sentence] = field(default_factory=list)
    findings: list[Sentence] = field(default_factory=list)
    impression: list[Sentence] = field(default_factory=list)
    limitations: list[Sentence] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    """De-identified metadata of each image, in study order."""
    study: list[StudyRef] = field(default_factory=list)
    evidence: list[dict] = field(default_factory=list)
    """Every evidence line the LLM read (:meth:`multimodal.evidence.Evidence.as_dict`)."""
    checks: dict = field(default_factory=dict)
    """The grounding check: ``{"drafts": n, "removed": [sentences], "issues": [...]}``."""
    models: dict[str, str] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).replace(microsecond=0).isoformat())
    disclaimer: str = DISCLAIMER

    def section(self, name: str) -> list[Sentence]:
        return getattr(self, name)

    def text(self, name: str) -> str:
        """A section as one paragraph."""
        return " ".join(s.text for s in self.section(name))

    def sentences(self) -> list[tuple[str, Sentence]]:
        """``(section, sentence)`` in reading order."""
        return [(name, s) for name in SECTIONS for s in self.section(name)]

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        """The report as a clinician reads it: each sentence with what it rests on in small print."""
        out = ["# MedAny imaging report", "", f"*{self.created}*", "", f"> **{self.disclaimer}**", ""]
        if self.question:
            out += [f"**Clinical question:** {self.question}", ""]
        for name in SECTIONS:
            out += [f"## {TITLES[name]}", ""]
            for s in self.section(name):
                rests = "; ".join(t.describe() for t in s.ties) or "no single evidence line (the model's wording)"
                out.append(f"- {s.text} <sub>[{'MedAny' if s.by == 'medany' else 'LLM'}; rests on: {rests}]</sub>")
            out.append("")
        if self.models:
            out += ["## Models", ""] + [f"- {k}: `{v}`" for k, v in self.models.items()] + [""]
        return "\n".join(out).rstrip() + "\n"
