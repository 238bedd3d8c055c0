"""Conformance with PS3.15 Table E.1-1: a canary planted in every applicable row never survives."""

from __future__ import annotations

import io
import json
import re

import pydicom
import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset

from multimodal.io.deid import UidMapper, deidentify_bytes
from multimodal.io.deid_table import TABLE_FILE, load_table, rows_from_module
from tests.multimodal.io.io_helpers import sample_bytes

CANARY = "QZCANARY"
HARMLESS = "QZHARMLESS"
DATE, TIME = "19770707", "071707"
# Attributes a Part 10 file cannot carry (command group 0000) or that pydicom writes itself.
NOT_IN_A_FILE = {0x00001000, 0x00001001, 0xFFFCFFFC}


def _vr(tag: int) -> str:
    try:
        return dictionary_VR(tag).split(" ")[0]
    except KeyError:
        return "LO"  # newer than pydicom's dictionary: plant it as text


def _canary(i: int, vr: str):
    text = f"{CANARY}{i:04d}"
    return {
        "DA": DATE, "TM": TIME, "DT": DATE + TIME, "UI": f"1.2.826.0.1.7731.{i}", "AS": "077Y",
        "IS": f"7731{i:04d}", "DS": f"7731.{i:04d}", "US": 7731, "UL": 77317731, "SS": 7731, "SL": 77317731,
        "FL": 7731.5, "FD": 7731.5, "OB": text.encode(), "OW": text.encode(), "UN": text.encode(),
        "OD": text.encode(), "OF": text.encode(), "OL": text.encode(), "OV": text.encode(),
        "AT": 0x77317731, "UV": 77317731, "SV": 77317731,
    }.get(vr, text[:16] if vr in ("AE", "CS", "SH") else text)


def _item(i: int) -> Dataset:
    """A sequence item with identifying and harmless-looking attributes, all carrying the canary."""
    item = Dataset()
    item.PatientName = f"{CANARY}{i:04d}"
    item.CodeMeaning = f"{HARMLESS}{i:04d}"  # no table row: kept where a sequence's items are cleaned (U*) only
    item.ReferencedSOPInstanceUID = f"1.2.826.0.1.7731.{i}"
    return item


def _row_tag(row) -> int:
    if row.mask == 0xFFFFFFFF:
        return row.tag
    return (row.tag & 0xFF00FFFF) | 0x00020000 if row.mask == 0xFF00FFFF else 0x50023000  # 6002xxxx, 5002 curve


def _planted() -> tuple[bytes, dict[int, tuple[str, object]]]:
    ds = pydicom.dcmread(io.BytesIO(sample_bytes("CT_small.dcm")))
    planted = {}
    for i, row in enumerate(load_table().rows):
        tag = _row_tag(row)
        if tag in NOT_IN_A_FILE or tag in (0x00080016,):
            continue
        vr = _vr(tag)
        value = [_item(i)] if vr == "SQ" else _canary(i, vr)
        target = ds.file_meta if tag >> 16 == 0x0002 else ds
        target.add_new(tag, vr, value)
        planted[tag] = (row.action, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue(), planted


def test_table_is_the_standards_generated_file():
    table = load_table()
    data = json.loads(TABLE_FILE.read_text())
    assert table.edition == data["edition"] == "2026c" and "dicom-anonymizer" in table.source["package"]
    assert len(table.rows) >= 600  # PS3.15 2026c lists 655 attribute rows
    assert {r.action for r in table.rows} >= {"X", "Z", "D", "U", "X/Z", "X/D", "X/Z/D", "Z/D", "X/Z/U*"}
    assert table.action(0x00100010) == "Z" and table.action(0x00080018) == "U"
    assert table.action(0x60024000) == "X" and table.action(0x50100000) == "X"  # repeating groups
    assert table.action(0x00280010) is None  # Rows: not an identifier


def test_module_parser_reads_black_wrapped_tuples():
    text = ("D_TAGS = [\n    (0x0010, 0x0010),  # Patient's Name\n]\nU_TAGS = [\n    (\n        0x0040,\n"
            "        0x4023,\n    ),  # Referenced UID\n    (0x6000, 0x4000, 0xFF00, 0xFFFF),  # Overlay Comments\n]\n")
    rows = rows_from_module(text)
    assert [(r["tag"], r["action"], r["name"]) for r in rows] == [
        ("00100010", "D", "Patient's Name"), ("00404023", "U", "Referenced UID"), ("60004000", "U", "Overlay Comments")]
    assert rows[2]["mask"] == "FF00FFFF"


def test_a_canary_in_every_applicable_row_never_survives():
    data, planted = _planted()
    assert len(planted) >= len(load_table().rows) - 5  # almost every row was planted
    assert data.count(CANARY.encode()) >= 400  # text rows; dates, UIDs and numbers carry their own marks
    uids = UidMapper(b"conformance")
    out = deidentify_bytes(data, uids)
    assert CANARY.encode() not in out
    survived = {int(m) for m in re.findall(rb"QZHARMLESS(\d{4})", out)}
    assert {load_table().rows[i].action for i in survived} <= {"X/Z/U*"}  # D, Z and X sequences keep nothing
    for needle in (DATE, "1.2.826.0.1.7731.", "7731.5", "77317731"):
        assert needle.encode() not in out, needle
    ds = pydicom.dcmread(io.BytesIO(out))
    survivors = []
    for tag, (action, value) in planted.items():
        source = ds.file_meta if tag >> 16 == 0x0002 else ds
        if tag not in source:
            if action in ("X", "X/Z", "X/D", "X/Z/D", "X/Z/U*"):
                continue
            survivors.append((f"{tag:08X}", action, "removed, but the row keeps it"))
            continue
        elem = source[tag]
        if action == "X":
            survivors.append((f"{tag:08X}", action, "present"))
        elif action in ("Z", "X/Z") and elem.value not in ("", None, b"", []):
            survivors.append((f"{tag:08X}", action, "not empty"))
        elif tag == 0x00020003 and elem.value != ds.SOPInstanceUID:  # the file meta follows the dataset
            survivors.append((f"{tag:08X}", action, "not the remapped SOP Instance UID"))
        elif action == "U" and tag != 0x00020003 and elem.value and str(elem.value) != uids(str(value)):
            survivors.append((f"{tag:08X}", action, "UID not remapped"))
    assert not survivors
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"  # dates were removed or replaced
    assert ds.PatientIdentityRemoved == "YES"


@pytest.mark.parametrize("keyword", [
    "ReasonForTheRequestedProcedure", "ReasonForVisit", "PatientTelecomInformation", "StudyArrivalDate",
    "StudyVerifiedDate", "DateOfLastDetectorCalibration", "DateOfManufacture", "ContrastBolusStartTime",
    "RadiopharmaceuticalStartDateTime", "FrameAcquisitionDateTime", "ScheduledProcedureStepID", "StationAETitle",
    "RetrieveAETitle", "UniqueDeviceIdentifier", "SpecimenAccessionNumber", "ClinicalTrialSubjectID",
    "ClinicalTrialSponsorName"])
def test_each_attribute_seen_leaking_is_now_covered(keyword):
    """Issue 13: attributes an attack found kept verbatim."""
    ds = pydicom.dcmread(io.BytesIO(sample_bytes("CT_small.dcm")))
    tag = pydicom.datadict.tag_for_keyword(keyword)
    vr = _vr(tag)
    ds.add_new(tag, vr, _canary(1, vr))
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    out = deidentify_bytes(buf.getvalue())
    value = _canary(1, vr)
    assert (value if isinstance(value, bytes) else str(value).encode()) not in out


def test_text_in_a_content_sequence_never_survives():
    """Issue 13: an SR-style Content Sequence carried the patient's name in a TextValue."""
    ds = pydicom.dcmread(io.BytesIO(sample_bytes("CT_small.dcm")))
    item = Dataset()
    item.ValueType, item.TextValue = "TEXT", f"Patient {CANARY} reports pain"
    nested = Dataset()
    nested.ValueType, nested.PersonName = "PNAME", CANARY
    item.ContentSequence = [nested]
    ds.ContentSequence = [item]
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    assert CANARY.encode() not in deidentify_bytes(buf.getvalue())


def test_private_information_creator_uid_is_replaced():
    ds = pydicom.dcmread(io.BytesIO(sample_bytes("CT_small.dcm")))
    ds.file_meta.PrivateInformationCreatorUID = "1.2.826.0.1.7731.99"
    ds.file_meta.PrivateInformation = CANARY.encode()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    out = deidentify_bytes(buf.getvalue(), UidMapper(b"k"))
    assert b"1.2.826.0.1.7731.99" not in out and CANARY.encode() not in out
