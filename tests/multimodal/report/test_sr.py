"""The DICOM SR: written, read back by pydicom and highdicom with the report's text, in the de-identified study."""

from __future__ import annotations

import io

import pydicom
import pytest

from multimodal.io.deid import UidMapper
from multimodal.report import generate_report, read_study, report_files
from multimodal.report.sr import read_back, sr_bytes
from tests.multimodal.report.conftest import KEY
from tests.multimodal.report.report_helpers import scripted_reporter

SECTIONS = {"findings": "The study is a PA chest radiograph.", "impression": "A frontal chest film.",
            "limitations": "Only the header was read."}


@pytest.fixture
def chest_report(tiny_stack, chest):
    return generate_report(scripted_reporter(tiny_stack, SECTIONS), chest, "Cough for three days", max_chars=120)


def test_the_sr_reads_back_with_every_sentence_and_its_evidence(chest_report, chest):
    import highdicom as hd

    data = sr_bytes(chest_report, [s.header for s in chest])
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.SOPClassUID == hd.sr.ComprehensiveSR.__init__.__globals__["ComprehensiveSRStorage"]
    assert (ds.CompletionFlag, ds.VerificationFlag, ds.PreliminaryFlag) == ("COMPLETE", "UNVERIFIED", "PRELIMINARY")
    document = hd.sr.ComprehensiveSR.from_dataset(ds)  # highdicom rebuilds and checks every content item
    assert document.content[0].ConceptNameCodeSequence[0].CodeValue == "18748-4"
    texts = read_back(data)
    for _, sentence in chest_report.sentences():
        assert sentence.text in texts
    assert "Image 1 DICOM header BodyPartExamined = CHEST" in texts  # a finding's evidence, as its own item
    assert "Cough for three days" in texts
    sections = [item.ConceptNameCodeSequence[0].CodeMeaning for item in ds.ContentSequence
                if item.ValueType == "CONTAINER"]
    assert sections == ["Request", "Current Procedure Descriptions", "Findings", "Impressions", "Limitations"]
    finding = next(i for i in ds.ContentSequence if i.ValueType == "CONTAINER"
                   and i.ConceptNameCodeSequence[0].CodeMeaning == "Findings").ContentSequence[0]
    below = {(i.RelationshipType, i.ValueType) for i in finding.ContentSequence}
    assert below == {("INFERRED FROM", "IMAGE"), ("INFERRED FROM", "TEXT")}


def test_the_sr_references_the_deidentified_uids_and_carries_no_identifier(chest_report, chest):
    from multimodal.samples import resolve_sample

    source = pydicom.dcmread(resolve_sample("sample:RG1_UNCR.dcm"), stop_before_pixels=True)
    data = sr_bytes(chest_report, [s.header for s in chest])
    ds = pydicom.dcmread(io.BytesIO(data))
    mapped = UidMapper(KEY)
    assert ds.StudyInstanceUID == mapped(source.StudyInstanceUID) != source.StudyInstanceUID
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == mapped(source.StudyInstanceUID)
    series = evidence.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == mapped(source.SeriesInstanceUID)
    assert series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == mapped(source.SOPInstanceUID)
    assert str(ds.PatientName) == "" and ds.PatientID == "" and ds.PatientBirthDate == ""
    assert ds.PatientIdentityRemoved == "YES"
    for needle in (str(source.PatientName), source.PatientID, source.StudyInstanceUID, source.SOPInstanceUID,
                   source.SeriesInstanceUID, source.PatientBirthDate, source.InstitutionName,
                   str(source.OtherPatientIDs), source.AccessionNumber):
        assert needle.encode() not in data, needle


def test_a_report_of_photos_only_opens_a_study_of_its_own(tiny_stack):
    study = read_study(["sample:fruits.jpg"], UidMapper())
    report = generate_report(scripted_reporter(tiny_stack, SECTIONS), study, max_chars=120)
    files = report_files(report, study)
    ds = pydicom.dcmread(io.BytesIO(files["report-sr.dcm"]))
    assert "CurrentRequestedProcedureEvidenceSequence" not in ds and ds.StudyInstanceUID.startswith("2.25.")
    assert report.technique[0].text in read_back(files["report-sr.dcm"])
