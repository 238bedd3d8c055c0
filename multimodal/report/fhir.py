"""The report as a FHIR R4B collection Bundle: a DiagnosticReport and its Observations (:mod:`multimodal.fhir`).

- **DiagnosticReport** (LOINC 18748-4, category RAD), ``preliminary``: nobody
  accountable has verified it. It refers to the study by its de-identified Study
  Instance UID (``imagingStudy``, an identifier ``urn:oid:``), concludes with the
  Impression, carries the four sections as its narrative and the Markdown report
  as ``presentedForm``; it names no performer (no clinician wrote it).
- **Observation** per image for the Technique (a component per header field it
  copies) and per Findings and Impression sentence (DICOM codes 121071 Finding,
  121073 Impression, the sentence as ``valueString``); each one's ``note`` lists
  what it rests on, ``derivedFrom`` names the study when it rests on a header, and
  ``device`` is MedAny.
"""

from __future__ import annotations

import base64

from .. import fhir
from .document import SECTIONS, TITLES, ImagingReport, Sentence

SUBJECT = {"display": "the patient of this study (de-identified)"}
_ITEM_CODES = {"findings": ("121071", "Finding"), "impression": ("121073", "Impression")}
_RAD = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD",
                    "display": "Radiology"}]}
_IMAGING = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "imaging",
                        "display": "Imaging"}]}


def study_reference(uid: str) -> dict:
    """A logical reference to an ImagingStudy by its (de-identified) Study Instance UID."""
    return {"type": "ImagingStudy", "identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"},
            "display": "de-identified study"}


def fhir_bundle(report: ImagingReport) -> dict:
    """The validated collection Bundle: the DiagnosticReport first, then its Observations."""
    studies = {r.label: r.study_uid for r in report.study if r.study_uid}
    observations = [_technique(label, [s for s in report.technique if s.text.startswith(f"{label}:")],
                               studies.get(label), report.created) for label in [r.label for r in report.study]]
    observations += [_sentence(name, s, studies, report.created) for name in _ITEM_CODES
                     for s in report.section(name)]
    urls = [fhir.new_url() for _ in observations]
    markdown = base64.b64encode(report.to_markdown().encode()).decode()
    diagnostic = {
        "resourceType": "DiagnosticReport", "status": "preliminary", "category": [_RAD],
        "code": fhir.concept("LOINC", "18748-4", "Diagnostic imaging study"), "subject": SUBJECT,
        "issued": report.created, "effectiveDateTime": report.created,
        "result": [{"reference": url, "type": "Observation"} for url in urls],
        "conclusion": report.text("impression"),
        "text": fhir.narrative([(TITLES[name], [s.text for s in report.section(name)]) for name in SECTIONS]),
        "presentedForm": [{"contentType": "text/markdown", "language": "en", "data": markdown,
                           "title": "MedAny imaging report (research use, unverified)"}]}
    uids = list(dict.fromkeys(studies.values()))
    if uids:
        diagnostic["imagingStudy"] = [study_reference(uid) for uid in uids]
    return fhir.collection([diagnostic, *zip(urls, observations)])


def _technique(label: str, sentences: list[Sentence], study_uid: str | None, when: str) -> dict:
    fields = [t for s in sentences for t in s.ties if t.source in ("dicom", "file")]
    resource = _observation({"text": f"{label} imaging technique (from the de-identified header)"},
                            " ".join(s.text for s in sentences), when)
    resource["component"] = [{"code": {"text": t.ref}, "valueString": t.value} for t in fields]
    if study_uid:
        resource["derivedFrom"] = [study_reference(study_uid)]
    return resource


def _sentence(section: str, sentence: Sentence, studies: dict, when: str) -> dict:
    resource = _observation(fhir.concept("DICOM", *_ITEM_CODES[section]), sentence.text, when)
    resource["note"] = [{"text": f"Rests on: {t.describe()}"} for t in sentence.ties] or \
        [{"text": "Rests on no single evidence line (the model's wording)."}]
    derived = [studies[label] for label in dict.fromkeys(t.label for t in sentence.ties if t.source == "dicom")
               if label in studies]
    if derived:
        resource["derivedFrom"] = [study_reference(uid) for uid in dict.fromkeys(derived)]
    return resource


def _observation(code: dict, value: str, when: str) -> dict:
    return {"resourceType": "Observation", "status": "preliminary", "category": [_IMAGING], "code": code,
            "subject": SUBJECT, "effectiveDateTime": when, "issued": when, "device": fhir.DEVICE,
            "valueString": value}
