"""The FHIR export: a DiagnosticReport and its Observations that fhir.resources parses, through the shared path."""

from __future__ import annotations

import base64
import json

from multimodal.fhir import RELEASE, model
from multimodal.io.deid import UidMapper
from multimodal.report import generate_report, report_files
from multimodal.report.fhir import fhir_bundle
from tests.multimodal.report.conftest import KEY
from tests.multimodal.report.report_helpers import scripted_reporter

SECTIONS = {"findings": "The study is a PA chest radiograph.", "impression": "A frontal chest film.",
            "limitations": "Only the header was read."}


def test_the_bundle_parses_and_holds_the_report(tiny_stack, chest):
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport
    from fhir.resources.R4B.observation import Observation

    from multimodal.samples import resolve_sample

    report = generate_report(scripted_reporter(tiny_stack, SECTIONS), chest, max_chars=120)
    text = report_files(report, chest)["report-fhir.json"].decode()
    bundle = Bundle.model_validate_json(text)  # what a receiver does with the file
    diagnostic, *observations = [e.resource for e in bundle.entry]
    assert isinstance(diagnostic, DiagnosticReport) and all(isinstance(o, Observation) for o in observations)
    assert diagnostic.status == "preliminary" and diagnostic.code.coding[0].code == "18748-4"
    assert diagnostic.conclusion == "A frontal chest film."
    assert [r.reference for r in diagnostic.result] == [e.fullUrl for e in bundle.entry[1:]]
    import pydicom

    source = pydicom.dcmread(resolve_sample("sample:RG1_UNCR.dcm"), stop_before_pixels=True)
    assert diagnostic.imagingStudy[0].identifier.value == f"urn:oid:{UidMapper(KEY)(source.StudyInstanceUID)}"
    assert source.StudyInstanceUID not in text and str(source.PatientName) not in text
    technique, finding, impression = observations
    assert {c.code.text: c.valueString for c in technique.component}["BodyPartExamined"] == "CHEST"
    assert finding.valueString == SECTIONS["findings"] and finding.code.coding[0].code == "121071"
    assert "Rests on: Image 1 DICOM header ViewPosition = PA" in [n.text for n in finding.note]
    assert finding.derivedFrom[0].identifier.value == diagnostic.imagingStudy[0].identifier.value
    assert impression.code.coding[0].code == "121073"
    form = json.loads(text)["entry"][0]["resource"]["presentedForm"][0]
    assert base64.b64decode(form["data"]).decode() == report.to_markdown() == diagnostic.presentedForm[0].data.decode()
    assert report.disclaimer in diagnostic.text.div


def test_the_consult_note_goes_through_the_same_fhir_path():
    from multimodal.consult_note import ConsultNote, extract

    symptoms, medications, allergies = extract("Headache for three days. I take 500 mg of naproxen daily.")
    note = ConsultNote("...", symptoms=symptoms, medications=medications, allergies=allergies,
                       subjective="Headache for three days.", objective="Not recorded.",
                       assessment="Headache.", plan="Rest; see a clinician if it persists.")
    bundle = note.fhir_bundle()
    parsed = model("Bundle").model_validate_json(json.dumps(bundle))
    kinds = [e.resource.get_resource_type() for e in parsed.entry]
    assert RELEASE == "R4B" and kinds == ["Composition", "Condition", "MedicationStatement"]
    composition = parsed.entry[0].resource
    assert [s.title for s in composition.section] == ["Subjective", "Objective", "Assessment", "Plan"]
    assert "Rest; see a clinician" in composition.section[3].text.div and composition.status == "preliminary"


def test_both_exports_use_one_helper(tiny_stack, chest, monkeypatch):
    """The report's bundle and the note's are both built by :func:`multimodal.fhir.collection`."""
    import multimodal.fhir as shared
    from multimodal.consult_note import ConsultNote

    seen = []
    real = shared.collection
    monkeypatch.setattr(shared, "collection", lambda resources: seen.append(len(resources)) or real(resources))
    report = generate_report(scripted_reporter(tiny_stack, SECTIONS), chest, max_chars=120)
    fhir_bundle(report)
    ConsultNote("...", subjective="a", objective="b", assessment="c", plan="d").fhir_bundle()
    assert seen == [4, 1]
