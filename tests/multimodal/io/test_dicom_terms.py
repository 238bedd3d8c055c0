"""Coded DICOM fields reach the model only as the standard's defined terms (issue 13, item 10)."""

from __future__ import annotations

import io

import pydicom
import pytest

from multimodal.io import load_image
from multimodal.io.dicom_terms import BODY_PARTS, MODALITIES, VIEWS, defined
from tests.multimodal.io.io_helpers import sample_bytes


def _with(**fields) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(sample_bytes("CT_small.dcm")))
    for key, value in fields.items():
        setattr(ds, key, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


@pytest.mark.parametrize("field,key,planted", [
    ("BodyPartExamined", "body_part", "ZZCANARY PATIENT"),
    ("BodyPartExamined", "body_part", "Smith^John"),
    ("Modality", "modality", "ZZCANARY"),
    ("ViewPosition", "view", "JOHN SMITH"),
])
def test_values_outside_the_defined_terms_become_unknown(field, key, planted):
    meta = load_image(_with(**{field: planted})).meta
    assert meta[key] == "unknown"
    from multimodal.prompt import dicom_summary

    line = dicom_summary(meta)
    assert "CANARY" not in line and "SMITH" not in line.upper()


@pytest.mark.parametrize("field,key,value,expected", [
    ("BodyPartExamined", "body_part", "CHEST", "CHEST"),
    ("BodyPartExamined", "body_part", "whole body", "WHOLEBODY"),  # as pydicom's NM sample writes it
    ("BodyPartExamined", "body_part", "C-SPINE", "CSPINE"),
    ("Modality", "modality", "mr", "MR"),
    ("ViewPosition", "view", "PA", "PA"),
    ("ViewPosition", "view", "MLO", "MLO"),
])
def test_defined_terms_pass_normalised(field, key, value, expected):
    assert load_image(_with(**{field: value})).meta[key] == expected


def test_absent_fields_stay_absent():
    ds = pydicom.dcmread(io.BytesIO(sample_bytes("CT_small.dcm")))
    for keyword in ("BodyPartExamined", "ViewPosition"):
        if keyword in ds:
            delattr(ds, keyword)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    meta = load_image(buf.getvalue()).meta
    assert meta["body_part"] is None and meta["view"] is None


def test_term_lists():
    assert {"CR", "DX", "CT", "MR", "US", "MG", "NM", "PT", "XA", "RF", "OT"} <= MODALITIES
    assert {"CHEST", "HEAD", "KNEE", "HAND", "ABDOMEN", "PELVIS", "WHOLEBODY", "EXTREMITY"} <= BODY_PARTS
    assert {"AP", "PA", "LL", "RL", "LLD", "RLD", "LLO", "RLO"} <= VIEWS
    assert defined("chest", BODY_PARTS) == "CHEST" and defined(None, BODY_PARTS) is None
    assert defined("", BODY_PARTS) is None and defined("JOHN", BODY_PARTS) == "unknown"
