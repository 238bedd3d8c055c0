"""The only DICOM metadata the model ever sees: clinical context, nothing identifying.

Free-text values never pass: modality, body part and view pass only as the
standard's defined terms (:mod:`.dicom_terms`; anything else is ``"unknown"``),
other coded strings are reduced to a short upper-case alphabet, ages become decade bands
(90+ pooled, as HIPAA Safe Harbor asks),
dates are only used to compute that band and are then dropped.
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np

from .dicom_terms import BODY_PARTS, MODALITIES, VIEWS, defined

META_KEYS = (
    "modality", "body_part", "view", "laterality", "spacing_mm", "spacing_source", "rows", "cols",
    "frames", "photometric", "bits_stored", "age_band", "sex", "window", "burned_in_annotation",
)
_CS_RE = re.compile(r"[^A-Z0-9 _]")


def _get(ds, keyword: str):
    try:
        return ds.get(keyword, None)
    except Exception:  # an unreadable optional attribute is simply absent
        return None


def coded(value, max_len: int = 16) -> str | None:
    """A DICOM code string reduced to ``[A-Z0-9 _]`` (at most ``max_len``), or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        try:
            value = str(value[0]) if len(value) else ""
        except TypeError:
            value = str(value)
    text = _CS_RE.sub("", value.upper()).strip()
    return text[:max_len] or None


def band(years: float) -> str | None:
    """Age in years -> decade band ``"40-49"``; ``"90+"`` at 90 and above."""
    if not np.isfinite(years) or years < 0 or years > 150:
        return None
    if years >= 90:
        return "90+"
    lo = int(years // 10) * 10
    return f"{lo}-{lo + 9}"


def _parse_age(text) -> float | None:
    """PatientAge ``nnnD|W|M|Y`` -> years."""
    m = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY])\s*", str(text or "").upper())
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2)
    return n / {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0}[unit]


def _parse_date(text) -> date | None:
    m = re.fullmatch(r"\s*(\d{4})(\d{2})(\d{2}).*", str(text or ""))
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def age_band(ds) -> str | None:
    """Decade band from PatientAge, else from birth date vs the study/series/content date."""
    years = _parse_age(_get(ds, "PatientAge"))
    if years is None:
        born = _parse_date(_get(ds, "PatientBirthDate"))
        when = None
        for key in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
            when = _parse_date(_get(ds, key))
            if when is not None:
                break
        if born is None or when is None:
            return None
        years = (when - born).days / 365.25
    return band(years)


def pixel_spacing(ds) -> tuple[tuple[float, float] | None, str | None]:
    """(row, column) spacing in mm and which attribute gave it.

    PixelSpacing is in the patient plane (calibrated); ImagerPixelSpacing is at
    the detector, so projection radiographs measured with it are magnified by
    the source-to-detector geometry. The caller is told which one it got.
    """
    candidates = [("PixelSpacing", ds), ("ImagerPixelSpacing", ds)]
    try:
        shared = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
        candidates.append(("PixelSpacing", shared))
    except Exception:
        pass
    for keyword, source in candidates:
        value = _get(source, keyword)
        try:
            row, col = (float(v) for v in value)
        except Exception:
            continue
        if np.isfinite(row) and np.isfinite(col) and row > 0 and col > 0:
            return (row, col), keyword
    return None, None


def dicom_meta(ds, info, window: dict) -> dict:
    """De-identified metadata for a decoded image (keys :data:`META_KEYS`)."""
    spacing, source = pixel_spacing(ds)
    sex = coded(_get(ds, "PatientSex"), 1)
    burned = coded(_get(ds, "BurnedInAnnotation"), 3)
    laterality = coded(_get(ds, "ImageLaterality")) or coded(_get(ds, "Laterality"))
    return {
        "modality": defined(_get(ds, "Modality"), MODALITIES),
        "body_part": defined(_get(ds, "BodyPartExamined"), BODY_PARTS),
        "view": defined(_get(ds, "ViewPosition"), VIEWS),
        "laterality": laterality if laterality in ("L", "R", "B", "U") else None,
        "spacing_mm": spacing,
        "spacing_source": source,
        "rows": info.rows,
        "cols": info.cols,
        "frames": info.frames,
        "photometric": info.photometric,
        "bits_stored": info.bits_stored,
        "age_band": age_band(ds),
        "sex": sex if sex in ("M", "F", "O") else None,
        "window": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in window.items()},
        "burned_in_annotation": {"YES": True, "NO": False}.get(burned or ""),
    }
