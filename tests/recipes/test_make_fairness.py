"""The fairness set: the recipe's held-out scans, de-identified, once per sex and age band."""

import json
from collections import Counter

import pydicom

from recipes.image.make_fairness import AGES, SEXES, main, pick_scans


def test_held_out_scans_are_one_file_per_held_out_source_group():
    assert [s.name for s in pick_scans()] == ["J2K_pixelrep_mismatch.dcm", "MR_small.dcm", "OT-PAL-8-face.dcm",
                                              "examples_palette.dcm"]
    assert len(pick_scans("all")) == 26


def test_every_scan_appears_once_per_sex_and_age_band_and_nothing_identifies_anyone(tmp_path, capsys):
    assert main([str(tmp_path)]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["records"] == 4 * len(SEXES) * len(AGES) == 32
    records = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    cells = Counter((r["source"], r["sex"], r["age_band"]) for r in records)
    assert len(cells) == 32 and set(cells.values()) == {1}
    first = pydicom.dcmread(tmp_path / records[0]["image"])
    assert (first.PatientSex, first.PatientAge, first.PatientIdentityRemoved) == ("F", "025Y", "YES")
    assert first.PatientName == "" and first.PatientID == "" and first.get("PatientBirthDate", "") == ""
    human = records[0]["conversations"][1]["value"]
    assert human.splitlines() == ["Image 1: DICOM modality CT (computed tomography), body part HEAD, age 20-29, sex F",
                                  "<image>", "Question: What modality, body part and view is this scan?"]
    assert records[0]["fields"] == {"modality": "CT", "body_part": "HEAD"}
