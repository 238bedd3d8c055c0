"""Report generation: every section under the schema, Technique from the header only, sentences held to evidence."""

from __future__ import annotations

import pytest

from multimodal.report import generate_report, report_schema
from multimodal.report.document import DISCLAIMER, SECTIONS
from multimodal.structured import check_schema
from tests.multimodal.report.report_helpers import scripted_reporter

CLEAN = {"findings": "The study is a PA chest radiograph (CR).",
         "impression": "A frontal chest film; a qualified reader must review it.",
         "limitations": "Only the header was read."}


def report_of(assistant, study, question: str = ""):
    return generate_report(assistant, study, question, max_chars=160)  # the tiny stack's 16 tokens cut sentences


def test_the_schema_fixes_the_technique_and_requires_every_section():
    schema = report_schema("Image 1: modality CR.", 120)
    check_schema(schema)  # constrained decoding can always meet it
    assert schema["required"] == list(SECTIONS)
    assert schema["properties"]["technique"] == {"enum": ["Image 1: modality CR."]}


def test_a_random_model_still_fills_every_section(tiny_stack, chest):
    report = generate_report(tiny_stack, chest, "cough?", max_chars=12)
    for name in SECTIONS:
        assert report.section(name) and all(s.text.strip() for s in report.section(name)), name
    assert report.limitations[-1].text == DISCLAIMER


def test_the_technique_is_the_header_verbatim_and_missing_fields_say_not_recorded(tiny_stack, chest):
    meta = chest[0].image.meta
    report = report_of(scripted_reporter(tiny_stack, CLEAN), chest)
    said = {t.ref: t.value for s in report.technique for t in s.ties}
    assert (said["Modality"], said["BodyPartExamined"], said["ViewPosition"]) == (meta["modality"], meta["body_part"],
                                                                                  meta["view"]) == ("CR", "CHEST",
                                                                                                    "PA")
    assert (said["Rows"], said["Columns"], said["PhotometricInterpretation"]) == ("1955", "1841", "MONOCHROME1")
    texts = [s.text for s in report.technique]
    assert "Image 1: modality CR (computed radiography, an X-ray)." in texts
    assert "Image 1: laterality not recorded." in texts  # RG1_UNCR has no ImageLaterality
    assert any(t.startswith("Image 1: pixel spacing not recorded") for t in texts)  # its PixelSpacing is 0\0
    assert all(s.by == "medany" for s in report.technique)
    # the model read the same technique inside its own JSON answer (a one-value enum, never generated)
    assert tiny_stack is not None and report.checks["drafts"] == 1


def test_generated_sentences_carry_the_header_fields_they_rest_on(tiny_stack, chest):
    report = report_of(scripted_reporter(tiny_stack, CLEAN), chest, "Cough for three days")
    finding, = report.findings
    assert finding.text == CLEAN["findings"] and finding.by == "llm"
    assert {(t.ref, t.value) for t in finding.ties} == {("Modality", "CR"), ("BodyPartExamined", "CHEST"),
                                                        ("ViewPosition", "PA")}
    assert report.limitations[0].text == CLEAN["limitations"] and report.limitations[0].ties == []
    assert report.question == "Cough for three days"
    data = report.to_dict()
    assert data["findings"][0]["ties"][0]["source"] == "dicom"
    assert "Image 1 DICOM header ViewPosition = PA" in report.to_markdown()


def test_a_contradicting_draft_is_written_again_and_what_still_contradicts_is_dropped(tiny_stack, chest):
    wrong = {**CLEAN, "findings": "The study is a CT of the head. There is a right lower lobe pneumonia."}
    fixed = report_of(scripted_reporter(tiny_stack, wrong, CLEAN), chest)
    assert fixed.checks["drafts"] == 2 and fixed.checks["removed"] == []
    assert {i["kind"] for i in fixed.checks["issues"][0]} >= {"modality", "body_part", "finding"}
    assert [s.text for s in fixed.findings] == [CLEAN["findings"]]

    stubborn = report_of(scripted_reporter(tiny_stack, wrong), chest)
    assert stubborn.checks["drafts"] == 2 and len(stubborn.checks["removed"]) == 2
    assert [s.by for s in stubborn.findings] == ["medany"]  # nothing grounded was left: MedAny says so
    assert "no model has read the image pixels" in stubborn.findings[0].text
    assert any("removed 2 generated sentences" in s.text for s in stubborn.limitations)
    assert "pneumonia" not in stubborn.to_markdown()


@pytest.mark.parametrize("finding", ["No acute cardiopulmonary abnormality.", "The lungs are clear."])
def test_a_finding_nobody_read_is_no_finding_even_without_a_claim_verb(tiny_stack, chest, finding):
    report = report_of(scripted_reporter(tiny_stack, {**CLEAN, "findings": finding}), chest)
    assert finding not in [s.text for s in report.findings]


def test_a_knowledge_row_the_impression_cites_is_its_evidence(tmp_path):
    from multimodal.config import StackConfig
    from multimodal.io.deid import UidMapper
    from multimodal.pipeline import Assistant
    from multimodal.report import read_study
    from tests.multimodal.knowledge.kb_helpers import build_small

    kb = build_small(tmp_path / "kb.sqlite")
    base = Assistant.load(StackConfig(llm="tiny-random", vision="", speech="", knowledge=str(kb.store.path),
                                      max_new_tokens=16))
    sections = {**CLEAN, "impression": "The clinical question names headache [HPO:0002315]."}
    report = report_of(scripted_reporter(base, sections), read_study(["sample:RG1_UNCR.dcm"], UidMapper()),
                             "Headaches for two days")
    impression, = report.impression
    assert [(t.source, t.ref) for t in impression.ties] == [("knowledge", "HPO:0002315")]
    assert any(e["source"] == "knowledge" for e in report.evidence)


def test_a_photo_in_the_study_is_said_to_be_no_scan(tiny_stack):
    from multimodal.io.deid import UidMapper
    from multimodal.report import read_study

    study = read_study(["sample:RG1_UNCR.dcm", "sample:fruits.jpg"], UidMapper())
    report = report_of(scripted_reporter(tiny_stack, CLEAN), study)
    assert report.findings[0].text.startswith("Image 2: MedAny's image check found a photograph")
    assert report.technique[-1].text.startswith("Image 2: a JPEG picture") and report.study[1].sop_uid is None


def test_a_sex_or_an_age_the_header_contradicts_is_dropped(tiny_stack, chest):
    """The default stack wrote "a 60-69-year-old man" of RG1_UNCR, whose header gives sex F."""
    from multimodal.report.generate import demographics

    meta = [chest[0].image.meta]
    assert (meta[0]["sex"], meta[0]["age_band"]) == ("F", "60-69")
    assert [i.said for i in demographics("A 60-69-year-old man with a cough.", meta)] == ["man"]
    assert [i.said for i in demographics("She is 45 years old.", meta)] == ["45 years old"]
    assert demographics("A woman aged 64; this film is hers.", meta) == []
    wrong = {**CLEAN, "impression": "A chest film of a 45-year-old man."}
    report = report_of(scripted_reporter(tiny_stack, wrong), chest)
    assert report.checks["removed"] == [wrong["impression"]]
    right = {**CLEAN, "impression": "A chest film of a woman aged 64."}
    impression, = report_of(scripted_reporter(tiny_stack, right), chest).impression
    assert {(t.ref, t.value) for t in impression.ties} == {("PatientSex", "F"), ("PatientAge", "band 60-69"),
                                                          ("BodyPartExamined", "CHEST")}


def test_a_section_cut_by_its_length_ends_at_its_last_whole_sentence(tiny_stack, chest):
    long = {**CLEAN, "limitations": "Only the header was read. " + "The pixels were not read by anyone at all " * 5}
    report = generate_report(scripted_reporter(tiny_stack, long), chest, max_chars=60)
    assert report.limitations[0].text == "Only the header was read."
