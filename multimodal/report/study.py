"""The images a report is about: decoded for the model, and each DICOM's header de-identified for the SR.

:func:`read_study` reads every file once: the image as the pipeline sees it
(:func:`multimodal.io.load_image`: validated, decoded, de-identified metadata) and,
for a DICOM, its header de-identified with the ``allowlist`` profile
(:func:`multimodal.io.deid.deidentify`): patient and study attributes emptied,
every instance UID remapped by the :class:`~multimodal.io.deid.UidMapper`. The
SR references those remapped UIDs and inherits those emptied attributes; the
original UIDs and identifiers never leave this module. With the key that
``medany deid --key`` used, the report's UIDs are the de-identified study's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

from ..errors import InputError
from ..io.deid import ALLOW_EMPTY, BurnedInAnnotationWarning, UidMapper, deidentify
from ..io.limits import DEFAULT_LIMITS, InputLimits
from ..io.types import MedicalImage
from .document import StudyRef

MAX_IMAGES = 12


@dataclass
class StudyImage:
    """One input: the decoded image and, for a DICOM, its de-identified header (no pixels)."""

    image: MedicalImage
    header: object | None = None
    """A pydicom ``Dataset`` after :func:`~multimodal.io.deid.deidentify` (``allowlist``), pixel data dropped."""

    def ref(self, label: str) -> StudyRef:
        h = self.header
        if h is None:
            return StudyRef(label)
        return StudyRef(label, str(h.StudyInstanceUID), str(h.SeriesInstanceUID), str(h.SOPInstanceUID),
                        str(h.SOPClassUID))


def read_study(sources: Sequence, uids: UidMapper | None = None,
               limits: InputLimits = DEFAULT_LIMITS) -> list[StudyImage]:
    """Read ``sources`` (paths, ``sample:NAME`` or bytes) for a report; raises a typed
    :class:`~multimodal.errors.InputError` for a file that is no image, or damaged, or too large."""
    from ..io.loader import read_bytes

    if not sources:
        raise InputError("Give at least one image (DICOM, PNG or JPEG) to report on.", code="no_images")
    if len(sources) > MAX_IMAGES:
        raise InputError(f"A report covers at most {MAX_IMAGES} images.", code="too_many_images")
    uids = uids or UidMapper()
    out = []
    for source in sources:
        data = source if isinstance(source, MedicalImage) else read_bytes(source, limits)
        if isinstance(data, MedicalImage):
            out.append(StudyImage(data))
            continue
        from ..io import load_image

        image = load_image(data, limits=limits)
        out.append(StudyImage(image, deidentified_header(data, uids) if image.kind == "dicom" else None))
    return out


def deidentified_header(data: bytes, uids: UidMapper):
    """The header of the DICOM ``data`` de-identified (``allowlist``), or None when it names no SOP class (an SR
    cannot reference it). Missing instance UIDs are made up from the file's bytes, so they stay stable."""
    import hashlib

    from ..io.dicom import parse_dicom

    ds = parse_dicom(data, stop_before_pixels=True)
    sop_class = str(ds.get("SOPClassUID", "") or getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", "")
                    or "").strip()
    if not sop_class:
        return None
    ds.SOPClassUID = sop_class
    digest = int(hashlib.sha256(data).hexdigest()[:24], 16)
    for n, keyword in enumerate(("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")):
        if not str(ds.get(keyword, "") or "").strip():
            ds.add_new(keyword, "UI", f"1.2.826.0.1.3680043.10.{n + 1}.{digest}")  # remapped with the rest below
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BurnedInAnnotationWarning)  # the report says so (image meta)
        deidentify(ds, uids, "allowlist")
    for keyword in ALLOW_EMPTY:  # present and empty, as an SR inherits them
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds
