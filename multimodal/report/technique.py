"""The Technique section, written from the de-identified header alone: never generated.

One sentence per header field (modality, body part, view, laterality, pixel
spacing, the pixel matrix), each tied to the DICOM keyword it copies; a field
the header does not give reads "not recorded", and a value that is no DICOM
defined term reads "not a DICOM defined term" (:mod:`multimodal.io.dicom_meta`
passes only defined terms). A photo has no header: its sentence says so.
"""

from __future__ import annotations

from ..io.dicom_terms import UNKNOWN
from ..io.types import MedicalImage
from ..prompt import MODALITY_NAMES
from .document import Sentence, Tie

NOT_RECORDED = "not recorded"


def technique(label: str, image: MedicalImage) -> list[Sentence]:
    """The Technique sentences of one image (``label``: ``"Image 1"``)."""
    if image.kind != "dicom":
        return [_photo(label, image.meta or {})]
    meta = image.meta or {}
    out = []
    for key, keyword, name in (("modality", "Modality", "modality"), ("body_part", "BodyPartExamined",
                                                                         "body part examined"),
                               ("view", "ViewPosition", "view position"), ("laterality", "ImageLaterality",
                                                                          "laterality")):
        value = meta.get(key)
        if not value:
            out.append(Sentence(f"{label}: {name} {NOT_RECORDED}.", [Tie("dicom", label, keyword, NOT_RECORDED)],
                                "medany"))
        elif value == UNKNOWN:
            out.append(Sentence(f"{label}: {name} not a DICOM defined term (not shown).",
                                [Tie("dicom", label, keyword, "not a defined term")], "medany"))
        else:
            meaning = MODALITY_NAMES.get(str(value)) if key == "modality" else None
            out.append(Sentence(f"{label}: {name} {value}" + (f" ({meaning})" if meaning else "") + ".",
                                [Tie("dicom", label, keyword, str(value))], "medany"))
    out.append(_spacing(label, meta))
    out.append(_matrix(label, meta))
    return out


def _spacing(label: str, meta: dict) -> Sentence:
    spacing, source = meta.get("spacing_mm"), meta.get("spacing_source")
    if not spacing or not source:
        return Sentence(f"{label}: pixel spacing {NOT_RECORDED}, so no distance or size can be measured.",
                        [Tie("dicom", label, "PixelSpacing", NOT_RECORDED)], "medany")
    row, col = spacing
    where = (" at the detector (ImagerPixelSpacing: not corrected for geometric magnification)"
             if source == "ImagerPixelSpacing" else "")
    return Sentence(f"{label}: pixel spacing {row:g} x {col:g} mm{where}.",
                    [Tie("dicom", label, source, f"{row:g}\\{col:g}")], "medany")


def _matrix(label: str, meta: dict) -> Sentence:
    fields = (("rows", "Rows"), ("cols", "Columns"), ("frames", "NumberOfFrames"),
              ("photometric", "PhotometricInterpretation"), ("bits_stored", "BitsStored"))
    ties = [Tie("dicom", label, keyword, str(meta[key])) for key, keyword in fields if meta.get(key) is not None]
    parts = []
    if meta.get("rows") and meta.get("cols"):
        parts.append(f"{meta['rows']} x {meta['cols']} pixels")
    if meta.get("frames"):
        parts.append(f"{meta['frames']} frame{'s' if meta['frames'] != 1 else ''}")
    if meta.get("photometric"):
        parts.append(str(meta["photometric"]))
    if meta.get("bits_stored"):
        parts.append(f"{meta['bits_stored']} bits stored")
    matrix = ", ".join(parts) or f"pixel matrix {NOT_RECORDED}"
    return Sentence(f"{label}: {matrix}.", ties, "medany")


def _photo(label: str, meta: dict) -> Sentence:
    size = f", {meta['rows']} x {meta['cols']} pixels" if meta.get("rows") and meta.get("cols") else ""
    fmt = str(meta.get("format") or "image")
    ties = [Tie("file", label, "format", fmt)]
    if size:
        ties.append(Tie("file", label, "size", f"{meta['rows']} x {meta['cols']}"))
    return Sentence(f"{label}: a {fmt} picture{size} with no DICOM header, so modality, body part, view and "
                    f"pixel spacing are {NOT_RECORDED}.", ties, "medany")
