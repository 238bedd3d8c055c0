"""The real scans behind the image recipe: pydicom's test DICOMs, grouped and split.

pydicom and pydicom-data ship ~250 files: real CR, CT, MR, US, NM scans, many
of them the same picture in several transfer syntaxes (``RG1_UNCR`` /
``RG1_J2KR`` / ``RG1_J2KI`` ...), plus reports, DICOMDIRs and deliberately
broken files. We keep what :func:`multimodal.io.load_image` decodes into a
single-frame image of useful size with a modality, and put copies of one
picture into one *source group* (same modality and size, thumbnails correlated
above 0.95, which tolerates lossy codecs and a different stored window), so that
no held-out scan is a re-encoding of a training scan.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multimodal.errors import InputError, require

from ..dataset import seeded

MIN_SIDE = 32  # DICOMDIR icons (16x16) carry no usable picture
THUMB = 16
SAME_PICTURE = 0.95  # here: one picture in two encodings >= 0.97, two pictures of one size <= 0.71
FIELDS = ("modality", "body_part", "view")


@dataclass(frozen=True)
class Scan:
    """One usable DICOM: its test-data file name, path, caption fields and source group.

    ``window`` is the ``(center, width)`` in modality units that grayscale
    scans are windowed around: the file's own (stored) window, else the
    automatic one; None for colour and palette scans.
    """

    name: str
    path: Path
    fields: dict
    shape: tuple[int, int]
    group: str
    window: tuple[float, float] | None


def _thumbnail(pixels: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` in [0, 1] (H, W >= 16) -> ``[16, 16]`` gray thumbnail of block means."""
    h, w = (pixels.shape[0] // THUMB) * THUMB, (pixels.shape[1] // THUMB) * THUMB
    gray = pixels[:h, :w].mean(axis=2)  # [h, w]
    return gray.reshape(THUMB, h // THUMB, THUMB, w // THUMB).mean(axis=(1, 3)).astype(np.float32)  # [16, 16]


def _same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    if a.std() < 1e-6 or b.std() < 1e-6:
        return bool(np.allclose(a, b, atol=1e-3))
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1]) >= SAME_PICTURE


def _decode_all() -> list[tuple[str, Path, dict, np.ndarray]]:
    """``(name, path, meta, thumbnail)`` for every test file that decodes to a usable image."""
    from multimodal.io import load_image

    data = require("pydicom.data", "all")
    found, seen = [], set()
    for path in sorted(data.get_testdata_files(), key=lambda p: Path(p).name):
        name = Path(path).name
        if name in seen or Path(path).suffix.lower() not in ("", ".dcm"):
            continue
        seen.add(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about odd but harmless values
            try:
                image = load_image(path)
            except InputError:
                continue
        meta = image.meta
        if image.kind != "dicom" or meta.get("frames") != 1 or not meta.get("modality"):
            continue
        if min(image.size) < MIN_SIDE:
            continue
        found.append((name, Path(path), meta, _thumbnail(image.pixels)))
    return found


def _window(path: Path, meta: dict) -> tuple[float, float] | None:
    if not str(meta.get("photometric", "")).startswith("MONOCHROME"):
        return None
    used = meta.get("window") or {}
    if "center" not in used:  # displayed min-max or through a VOI LUT: window around the automatic one
        from multimodal.io import load_image

        used = load_image(path, window="auto").meta["window"]
    return float(used["center"]), float(used["width"])


@functools.lru_cache(maxsize=1)
def usable_scans() -> tuple[Scan, ...]:
    """Every usable test DICOM with its source group (cached: decoding all takes a few seconds)."""
    decoded = _decode_all()
    groups: list[tuple[tuple, np.ndarray, str]] = []  # (modality, size) key, thumbnail, group id
    scans = []
    for name, path, meta, thumb in decoded:
        key = (meta["modality"], meta["rows"], meta["cols"])
        group = next((g for k, t, g in groups if k == key and _same_picture(t, thumb)), None)
        if group is None:
            group = Path(name).stem
            groups.append((key, thumb, group))
        fields = {k: meta[k] for k in FIELDS if meta.get(k)}
        scans.append(Scan(name, path, fields, (meta["rows"], meta["cols"]), group, _window(path, meta)))
    return tuple(scans)


def split_groups(scans: tuple[Scan, ...], seed: int = 0) -> tuple[list[Scan], list[Scan]]:
    """``(train, held_out)`` scans: one whole source group per modality that has three or more.

    Modalities with fewer groups stay in training only, so every held-out scan
    shows a modality the projector has seen, in a picture it has not.
    """
    by_modality: dict[str, list[str]] = {}
    for s in scans:
        groups = by_modality.setdefault(s.fields["modality"], [])
        if s.group not in groups:
            groups.append(s.group)
    rng = seeded(seed, "scan-split")
    held = {rng.choice(sorted(g)) for _, g in sorted(by_modality.items()) if len(g) >= 3}
    return [s for s in scans if s.group not in held], [s for s in scans if s.group in held]
