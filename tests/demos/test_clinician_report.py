"""The Clinician workspace's "Generate report": the study's four report files, driven without a browser."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

SECTIONS = {"findings": "The study is a PA chest radiograph.", "impression": "A frontal chest film.",
            "limitations": "Only the header was read."}


@pytest.fixture(scope="module")
def reporter(tiny_assistant):
    from tests.multimodal.report.report_helpers import scripted_reporter

    return scripted_reporter(tiny_assistant, SECTIONS)


def test_generate_report_writes_markdown_json_sr_and_fhir_for_the_study(reporter, tmp_path):
    from demos.clinician import ClinicianWorkspace
    from demos.private import PrivateFiles
    from demos.settings import DemoSettings
    from multimodal.report.sr import read_back

    ws = ClinicianWorkspace(reporter, DemoSettings(), PrivateFiles(tmp_path))
    study = ws.add_sample([])[0]
    paths, markdown = ws.generate_report("Cough for three days", study, "session-1")
    assert [Path(p).name for p in paths] == ["report.md", "report.json", "report-sr.dcm", "report-fhir.json"]
    assert all(Path(p).parent == Path(paths[0]).parent and Path(p).is_relative_to(tmp_path) for p in paths)
    assert markdown == Path(paths[0]).read_text() and SECTIONS["findings"] in markdown
    assert json.loads(Path(paths[1]).read_text())["question"] == "Cough for three days"
    sr = Path(paths[2]).read_bytes()
    assert SECTIONS["impression"] in read_back(sr) and str(pydicom.dcmread(paths[2]).PatientName) == ""
    assert json.loads(Path(paths[3]).read_text())["entry"][0]["resource"]["conclusion"] == SECTIONS["impression"]
    again, _ = ws.generate_report("", study, "session-1")  # one key per server: the same de-identified study
    assert pydicom.dcmread(again[2]).StudyInstanceUID == pydicom.dcmread(paths[2]).StudyInstanceUID


def test_generate_report_without_a_study_asks_for_one(reporter, tmp_path):
    from demos.clinician import ClinicianWorkspace
    from demos.private import PrivateFiles
    from demos.settings import DemoSettings

    ws = ClinicianWorkspace(reporter, DemoSettings(), PrivateFiles(tmp_path))
    with pytest.raises(Exception, match="Load a study first"):
        ws.generate_report("", [], "session-1")
