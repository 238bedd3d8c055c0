"""De-identification (PS3.15 Annex E basic profile): planted identifiers never survive."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset

from multimodal.io.deid import BurnedInAnnotationWarning, UidMapper, deidentify, deidentify_bytes, main
from multimodal.io.deid_table import load_table
from tests.multimodal.io.io_helpers import sample_bytes

MARK = "ZQXJ7731"  # a synthetic name / ID, planted everywhere
DATE, TIME, UID_MARK = "19770707", "071707", "1.2.826.0.1.77317731"
# Every table row whose attribute pydicom's dictionary names (the conformance test covers the rest).
PROFILE_KEYWORDS = [k for r in load_table().rows if r.mask == 0xFFFFFFFF and (k := keyword_for_tag(r.tag))
                    and r.tag >> 16 not in (0x0000, 0x0002, 0xFFFC)]
STRING_VRS = {"PN", "LO", "SH", "LT", "ST", "UT", "UC", "AE", "CS", "UR"}


def _value(vr: str):
    vr = vr.split(" ")[0]
    if vr in STRING_VRS:
        return MARK
    return {
        "DA": DATE, "TM": TIME, "DT": DATE + TIME, "UI": UID_MARK, "AS": "077Y", "IS": "77317731",
        "DS": "7731.7731", "US": 7731, "UL": 7731, "SS": 7731, "SL": 7731, "FL": 7731.0, "FD": 7731.0,
        "OB": MARK.encode(), "OW": MARK.encode(), "UN": MARK.encode(),
    }.get(vr)


def _item() -> Dataset:
    item = Dataset()
    item.PatientName = MARK
    item.PatientID = MARK
    item.ReferencedSOPClassUID = pydicom.uid.MRImageStorage
    item.ReferencedSOPInstanceUID = UID_MARK
    item.add_new(0x00400441, "SQ", [])  # nested empty sequence
    item.private_block(0x0011, "ACME SITE", create=True).add_new(0x01, "LO", MARK)
    return item


def _planted(burned: str = "YES") -> Dataset:
    ds = pydicom.dcmread(io.BytesIO(sample_bytes("MR_small.dcm")))
    for keyword in PROFILE_KEYWORDS:
        tag = tag_for_keyword(keyword)
        vr = dictionary_VR(tag)
        if vr == "SQ":
            ds.add_new(tag, "SQ", [_item()])
        elif (value := _value(vr)) is not None:
            target = ds.file_meta if tag >> 16 == 0x0002 else ds
            target.add_new(tag, vr.split(" ")[0], value)
    ds.private_block(0x0009, "ACME PRIVATE", create=True).add_new(0x10, "LO", MARK)
    ds.add_new(0x00091100, "LO", MARK)  # private element without a creator
    ds.ReferencedImageSequence = [_item()]
    ds.StudyInstanceUID = "1.2.826.0.1.7731.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.7731.2"
    ds.SOPInstanceUID = "1.2.826.0.1.7731.3"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.add_new(0x60003000, "OW", MARK.encode())  # overlay data
    ds.add_new(0x40101069, "PN", MARK)  # a person name the table does not list
    ds.BurnedInAnnotation = burned
    return ds


def _to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_profile_keywords_are_real_attributes():
    assert len(PROFILE_KEYWORDS) >= 200
    missing = [k for k in PROFILE_KEYWORDS if tag_for_keyword(k) is None]
    assert not missing


def test_planted_identifiers_never_survive():
    data = _to_bytes(_planted())
    assert data.count(MARK.encode()) > 150  # the plant really happened
    uids = UidMapper(b"test-key")
    with pytest.warns(BurnedInAnnotationWarning):
        out = deidentify_bytes(data, uids)
    for needle in (MARK, DATE, UID_MARK, "77317731", "7731.7731", "1.2.826.0.1.7731"):
        assert needle.encode() not in out, needle
    ds = pydicom.dcmread(io.BytesIO(out))
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert "PatientName" in ds and str(ds.PatientName) == ""  # Z: present, empty
    assert "OtherPatientIDs" not in ds  # X: removed
    assert ds.InstitutionName == "ANONYMIZED"  # X/Z/D: a dummy, valid whatever the IOD requires
    seen = []

    def visit(dataset, elem):
        assert not elem.tag.is_private, elem.tag
        assert elem.tag.group & 0xFF00 != 0x6000
        if elem.VR == "UI" and elem.value:
            for v in (elem.value if elem.VM > 1 else [elem.value]):
                assert len(str(v)) <= 64
        seen.append(elem.tag)

    ds.walk(visit)
    assert ds.SOPClassUID == pydicom.uid.MRImageStorage  # class UIDs are kept
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.SOPInstanceUID == uids("1.2.826.0.1.7731.3")
    # pixels untouched
    assert ds.PixelData == pydicom.dcmread(io.BytesIO(data)).PixelData


def test_uids_are_consistent_across_files():
    uids = UidMapper(b"study-key")
    a, b = _planted("NO"), _planted("NO")
    b.SOPInstanceUID = "1.2.826.0.1.7731.4"
    b.ReferencedImageSequence[0].ReferencedSOPInstanceUID = a.SOPInstanceUID
    da = pydicom.dcmread(io.BytesIO(deidentify_bytes(_to_bytes(a), uids)))
    db = pydicom.dcmread(io.BytesIO(deidentify_bytes(_to_bytes(b), uids)))
    assert da.StudyInstanceUID == db.StudyInstanceUID != "1.2.826.0.1.7731.1"
    assert da.SOPInstanceUID != db.SOPInstanceUID
    assert db.ReferencedImageSequence[0].ReferencedSOPInstanceUID == da.SOPInstanceUID
    assert da.StudyInstanceUID.startswith("2.25.") and pydicom.uid.UID(da.StudyInstanceUID).is_valid
    # a different key gives unlinkable UIDs
    other = UidMapper(b"another-key")
    assert other("1.2.826.0.1.7731.1") != uids("1.2.826.0.1.7731.1")


def test_no_warning_without_burned_in_annotation():
    with warnings.catch_warnings():
        warnings.simplefilter("error", BurnedInAnnotationWarning)
        deidentify(_planted("NO"))


def test_real_chest_film_deid_keeps_image():
    data = sample_bytes("RG1_UNCR.dcm")
    out = deidentify_bytes(data)
    for secret in (b"CompressedSamples", b"9RG1", b"19400305", b"Hamburg", b"THORAVISION", b"92.00.003"):
        assert secret not in out
    from multimodal.io import load_image

    assert (load_image(out).pixels == load_image(data).pixels).all()


def test_cli_bulk(tmp_path, capsys):
    src = tmp_path / "in" / "Zyxwv_patient"
    src.mkdir(parents=True)
    (src / "a.dcm").write_bytes(_to_bytes(_planted("YES")))
    (src / "b.dcm").write_bytes(sample_bytes("CT_small.dcm"))
    (src / "notes.txt").write_text("not dicom")
    rc = main([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--key", "k"])
    assert rc == 1  # the text file was refused
    outs = sorted((tmp_path / "out").glob("*.dcm"))
    assert len(outs) == 2 and all(p.name.startswith("2.25.") for p in outs)
    for p in outs:
        assert MARK.encode() not in p.read_bytes()
        assert pydicom.dcmread(p).PatientIdentityRemoved == "YES"
    captured = capsys.readouterr()
    assert "burned-in" in captured.err and "de-identified 2 file(s)" in captured.out
    assert "Zyxwv" not in captured.err + captured.out  # folder names often carry patient names
    assert "a.dcm" not in captured.err and "input 1: WARNING" in captured.err and "input 3: skipped" in captured.err


def test_cli_names_input_paths_only_when_asked(tmp_path, capsys):
    src = tmp_path / "Zyxwv_patient"
    src.mkdir()
    (src / "notes.txt").write_text("not dicom")
    assert main([str(src), "--out", str(tmp_path / "out"), "--show-paths"]) == 1
    assert f"{src / 'notes.txt'}: skipped" in capsys.readouterr().err


def _text_vr_uids(sop: str, study: str = "1.2.826.0.1.7731.1") -> bytes:
    """A DICOM whose SOP and Study Instance UIDs are written with a text VR (explicit VR allows it)."""
    ds = pydicom.dcmread(io.BytesIO(sample_bytes("CT_small.dcm")))
    del ds.SOPInstanceUID, ds.StudyInstanceUID
    ds.add_new(0x00080018, "LO", sop)
    ds.add_new(0x0020000D, "LO", study)
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


@pytest.mark.parametrize("sop", ["../../escaped", "/tmp/medany-absolute-escape", "..", "a/b", "nul\x00byte"])
def test_cli_never_writes_outside_out_whatever_the_uid_says(tmp_path, sop, capsys):
    """Issue 13: a SOP Instance UID with a text VR was used, unchecked, as the output file name."""
    inputs, out = tmp_path / "in", tmp_path / "deep" / "out"
    inputs.mkdir()
    (inputs / "x.dcm").write_bytes(_text_vr_uids(sop))
    before = set(tmp_path.rglob("*")) | set(Path("/tmp").glob("medany-absolute-escape*"))
    assert main([str(inputs), "--out", str(out)]) == 0
    written = [p for p in tmp_path.rglob("*") if p.is_file()] + list(Path("/tmp").glob("medany-absolute-escape*"))
    new = [p for p in written if p not in before]
    assert len(new) == 1 and new[0].parent == out and new[0].name.startswith("2.25.")
    ds = pydicom.dcmread(new[0])
    assert ds.SOPInstanceUID.startswith("2.25.") and ds.StudyInstanceUID.startswith("2.25.")  # remapped by tag
    assert ds["SOPInstanceUID"].VR == "UI" and ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert MARK not in new[0].read_bytes().decode("latin-1") and "7731.1" not in str(ds.StudyInstanceUID)


def test_cli_keeps_both_files_when_two_share_a_uid(tmp_path, capsys):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    data = sample_bytes("CT_small.dcm")
    (inputs / "a.dcm").write_bytes(data)
    (inputs / "b.dcm").write_bytes(data)
    assert main([str(inputs), "--out", str(out)]) == 0
    assert len(list(out.glob("*.dcm"))) == 2
    assert "de-identified 2 file(s)" in capsys.readouterr().out


def _without(keyword: str, value=None) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(sample_bytes("CT_small.dcm")))
    if value is None:
        del ds[keyword]
    else:
        setattr(ds, keyword, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


def test_cli_gives_every_input_its_own_outcome_and_never_aborts_the_batch(tmp_path, capsys):
    """Issue 13: an empty SOP Instance UID or a missing SOP Class UID aborted the batch with a traceback."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (inputs / "1.dcm").write_bytes(_without("SOPInstanceUID", ""))
    (inputs / "2.dcm").write_bytes(_without("SOPClassUID"))
    (inputs / "3.dcm").write_bytes(sample_bytes("CT_small.dcm"))
    (inputs / "4.dcm").write_bytes(sample_bytes("MR_small.dcm"))
    rc = main([str(inputs), "--out", str(out)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = (captured.out + captured.err).splitlines()
    for n in range(1, 5):
        assert any(line.startswith(f"input {n}: ") for line in lines), (n, lines)
    written = list(out.glob("*.dcm"))
    assert len(written) >= 3  # the empty-UID file gets a new UID; only the class-less one may be refused
    assert rc == (0 if len(written) == 4 else 1)
    for p in written:
        ds = pydicom.dcmread(p)
        assert ds.SOPInstanceUID.startswith("2.25.") and ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_cli_never_prints_the_path_of_a_missing_input(tmp_path, capsys):
    missing = tmp_path / "Zyxwv^Patient" / "scan.dcm"
    assert main([str(missing), "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "Zyxwv" not in captured.out + captured.err and "input 1: skipped" in captured.err


def _finishes(fn, seconds: float = 20.0):
    import threading

    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "hung"
    return result["rc"]


def test_cli_refuses_special_files_instead_of_hanging_or_reading_forever(tmp_path, capsys):
    """Issue 13: a FIFO hung `medany deid`; /dev/zero was read without limit."""
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    rc = _finishes(lambda: main([str(fifo), "/dev/zero", "--out", str(tmp_path / "out")]))
    assert rc == 1
    err = capsys.readouterr().err
    assert "input 1: skipped" in err and "input 2: skipped" in err and "not a regular file" in err


@pytest.mark.parametrize("profile", ["basic", "allowlist"])
@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "gdcm-US-ALOKA-16.dcm"])
def test_both_profiles_keep_what_the_model_reads(profile, name):
    """The chest film, and an ultrasound whose palette is stored segmented (the allowlist once dropped it)."""
    from multimodal.io import load_image

    data = sample_bytes(name)
    out = deidentify_bytes(data, profile=profile)
    before, after = load_image(data), load_image(out)
    assert (after.pixels == before.pixels).all()
    for key in ("modality", "body_part", "rows", "cols", "spacing_mm", "photometric"):
        assert after.meta[key] == before.meta[key], key


def test_allowlist_drops_everything_it_does_not_name():
    from multimodal.io.deid import ALLOW, ALLOW_EMPTY

    data = _to_bytes(_planted("NO"))
    ds = pydicom.dcmread(io.BytesIO(deidentify_bytes(data, UidMapper(b"k"), profile="allowlist")))
    kept = {e.keyword for e in ds}
    assert kept <= ALLOW | set(ALLOW_EMPTY), kept - ALLOW - set(ALLOW_EMPTY)
    assert all(str(ds[k].value) == "" for k in ALLOW_EMPTY if k in ds)
    assert MARK.encode() not in deidentify_bytes(data, profile="allowlist")
    assert ds.SOPInstanceUID == UidMapper(b"k")("1.2.826.0.1.7731.3")


@pytest.mark.parametrize("profile", ["allowlist", "basic"])
def test_the_method_it_records_fits_its_value_representation(profile):
    """De-identification Method is LO (64 characters a value): an SR that inherits it must stay valid."""
    ds = pydicom.dcmread(io.BytesIO(sample_bytes("CT_small.dcm")))
    deidentify(ds, UidMapper(b"k"), profile)
    values = ds.DeidentificationMethod if ds["DeidentificationMethod"].VM > 1 else [ds.DeidentificationMethod]
    assert all(0 < len(v) <= 64 for v in values)
    assert " ".join(values).startswith(("MedAny allowlist", "PS3.15 E.1 Basic"))
