"""``medany report``: four files into --out and nowhere else; typed refusals before any model loads."""

from __future__ import annotations

import io
import json
import os

import pydicom
import pytest

from multimodal import cli
from multimodal.report.command import report
from tests.multimodal.report.report_helpers import scripted_reporter

TINY = ["--llm", "tiny-random", "--vision", "tiny_vit", "--speech", "", "--knowledge", "none", "--max-new-tokens",
        "8"]
SECTIONS = {"findings": "The study is a PA chest radiograph.", "impression": "A frontal chest film.",
            "limitations": "Only the header was read."}


def _tree(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files}


def test_the_command_writes_the_four_files_only_into_out(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("x")
    before = _tree(tmp_path)
    rc = cli.main(["report", "sample:RG1_UNCR.dcm", "--out", str(tmp_path / "out" / "chest"), "--question",
                   "Cough for three days", *TINY])
    assert rc == 0
    assert _tree(tmp_path) - before == {f"out/chest/{n}" for n in ("report.md", "report.json", "report-sr.dcm",
                                                                   "report-fhir.json")}
    folder = tmp_path / "out" / "chest"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in folder.iterdir())
    out = capsys.readouterr().out
    assert out.startswith("# MedAny imaging report") and "Image 1: body part examined CHEST." in out
    written = json.loads((folder / "report.json").read_text())
    assert written["schema"] == "medany.imaging-report/v1" and written["question"] == "Cough for three days"
    sr = pydicom.dcmread(folder / "report-sr.dcm")
    assert sr.Modality == "SR" and str(sr.PatientName) == ""
    assert json.loads((folder / "report-fhir.json").read_text())["entry"][0]["resource"]["resourceType"] == \
        "DiagnosticReport"


def test_a_scripted_answer_lands_in_every_file(tiny_stack, tmp_path, capsys):
    assistant = scripted_reporter(tiny_stack, SECTIONS)
    assert report(["sample:RG1_UNCR.dcm"], str(tmp_path), assistant=assistant, key="k") == 0
    from multimodal.report.sr import read_back

    assert SECTIONS["findings"] in read_back((tmp_path / "report-sr.dcm").read_bytes())
    assert SECTIONS["findings"] in (tmp_path / "report.md").read_text()
    assert SECTIONS["findings"] in (tmp_path / "report-fhir.json").read_text()


@pytest.fixture
def no_models(monkeypatch):
    from multimodal.pipeline import Assistant

    def refuse(*args, **kwargs):
        raise AssertionError("models were loaded for a request that is refused")

    monkeypatch.setattr(Assistant, "load", refuse)


def test_bad_inputs_are_refused_with_their_typed_error_before_any_model_loads(tmp_path, capsys, no_models):
    from multimodal.samples import resolve_sample

    text = tmp_path / "notes.txt"
    text.write_text("Patient Jane Doe, chest pain")
    wav = tmp_path / "consult.wav"
    wav.write_bytes(b"RIFF" + (36).to_bytes(4, "little") + b"WAVEfmt " + b"\0" * 40)
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(resolve_sample("sample:RG1_UNCR.dcm").read_bytes()[:4000])
    cases = [(text, "not a recognised format"), (wav, "Expected an image"), (broken, "damaged"),
             (tmp_path / "missing.dcm", "could not be found")]
    for path, said in cases:
        assert cli.main(["report", str(path), "--out", str(tmp_path / "out"), *TINY]) == 2
        err = capsys.readouterr().err
        assert err.startswith("medany report: input problem:") and said in err, (path.name, err)
        assert "Jane" not in err and "Traceback" not in err
    assert not any((tmp_path / "out").iterdir())


def test_an_unusable_out_folder_is_refused(tmp_path, capsys, no_models):
    from multimodal.report.command import OutputFolderError, output_folder

    afile = tmp_path / "afile"
    afile.write_text("x")
    assert cli.main(["report", "sample:RG1_UNCR.dcm", "--out", str(afile), *TINY]) == 2
    assert "not a folder" in capsys.readouterr().err
    with pytest.raises(OutputFolderError, match="cannot be created"):
        output_folder(str(afile / "below"))
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anywhere
        with pytest.raises(OutputFolderError, match="not writable"):
            output_folder(str(locked))


def test_a_link_in_out_that_leads_elsewhere_is_not_followed(tiny_stack, tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text("keep")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "report.md").symlink_to(outside)
    from multimodal.errors import InputError

    with pytest.raises(InputError, match="leaves the output folder"):
        report(["sample:RG1_UNCR.dcm"], str(folder), assistant=scripted_reporter(tiny_stack, SECTIONS))
    assert outside.read_text() == "keep"


def test_the_sr_of_the_command_parses_from_bytes(tiny_stack, tmp_path):
    report(["sample:RG1_UNCR.dcm"], str(tmp_path), assistant=scripted_reporter(tiny_stack, SECTIONS))
    ds = pydicom.dcmread(io.BytesIO((tmp_path / "report-sr.dcm").read_bytes()))
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_the_command_is_delegated_and_takes_the_stack_options(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["report", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and all(flag in out for flag in ("--out", "--question", "--key", "--llm", "--config"))
