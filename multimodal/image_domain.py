"""Is this picture a medical scan at all? A cheap check, so a meal photo is never read as a radiograph.

Two measurements, each on a strided subsample (at most ~256 x 256 points):

- **colour**: the mean HSV saturation. A radiograph, CT or MR is grey
  (saturation 0); measured on the 26 distinct pictures of pydicom's test data,
  the most colourful medical one is an ultrasound with a colour overlay
  (``color-pl.dcm``: 0.146), while the bundled fruit photo is 0.605 and the face
  photograph stored as a DICOM (``OT-PAL-8-face.dcm``) 0.289.
  :data:`MAX_SCAN_SATURATION` sits between them.
- **food**: for a grey picture, the probability mass the ImageNet head (the
  default vision encoder's own classifier) puts on its food classes
  (:func:`encoders.imagenet_foods.food_mass`). On those scans it is at most 0.20
  (the chest film, whose lungs look like a "head cabbage" at 13 %); on the fruit
  photo turned grey it is 0.91. :data:`MAX_SCAN_FOOD` sits between them.

A DICOM whose header names an imaging modality (CR, CT, MR, US ...) is a scan
whatever its pixels look like (an ultrasound may carry colour Doppler); only a
DICOM with another or no modality (``OT`` secondary captures, ``XC`` photos)
is judged by its pixels. The verdict is evidence (:func:`multimodal.evidence.not_a_scan`):
the prompt states it, the grounding check holds answers to it, the UI shows it.

Letters: H/W pixels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .io.types import MedicalImage

MAX_SCAN_SATURATION = 0.22
"""Mean saturation above which a picture is a colour photo (medical pictures measured: at most 0.146)."""
MAX_SCAN_FOOD = 0.5
"""ImageNet food-class mass above which a grey picture is a photo of food (scans measured: at most 0.20)."""
SCAN_MODALITIES = frozenset({"CR", "DX", "CT", "MR", "US", "MG", "NM", "PT", "XA", "RF", "IO", "PX", "BMD", "RG"})
"""DICOM modalities that are medical imaging of the body: a header naming one settles the question."""
_DARK = 0.05  # below this brightness a pixel's hue is noise: it counts as grey
SCAN_WORDS = re.compile(r"\b(?:radiographs?|x-?rays?|scans?|films?|study|studies|imaging|dicom|modality|CT|MRI|"
                        r"ultrasound|sonograms?|mammograms?)\b", re.IGNORECASE)
"""Words that treat a picture as a scan ("this chest film", "which modality")."""


@dataclass(frozen=True)
class DomainVerdict:
    """What the check found: whether the picture is a medical scan, and why."""

    scan: bool
    reason: str
    """``header`` (a DICOM naming an imaging modality), ``grey`` (grey and not food), ``colour`` or ``food``."""
    saturation: float
    """Mean HSV saturation of the picture (0 for grey)."""
    food: float | None = None
    """ImageNet food-class mass, when the classifier was asked (grey pictures without a deciding header)."""

    def as_dict(self) -> dict:
        return {"scan": self.scan, "reason": self.reason, "saturation": round(self.saturation, 3),
                "food": None if self.food is None else round(self.food, 3)}


def saturation(pixels: np.ndarray) -> float:
    """Mean HSV saturation of an ``[H, W, 3]`` image in [0, 1] (strided, at most ~256 x 256 points)."""
    step = max(1, max(pixels.shape[:2]) // 256)
    p = np.asarray(pixels[::step, ::step, :3], dtype=np.float32)  # [h, w, 3]
    if p.size == 0:
        return 0.0
    top, bottom = p.max(axis=2), p.min(axis=2)  # [h, w]
    s = np.where(top > _DARK, (top - bottom) / np.maximum(top, 1e-6), 0.0)
    return float(s.mean())


def check_domain(image: MedicalImage, classifier=None) -> DomainVerdict:
    """Whether ``image`` is a medical scan: its header's modality, else its colour, else (when ``classifier`` is
    an ImageNet-1k :class:`~encoders.base.Classifier` with a trained head) how much it looks like food."""
    sat = saturation(image.pixels)
    modality = str((image.meta or {}).get("modality") or "").upper()
    if image.kind == "dicom" and modality in SCAN_MODALITIES:
        return DomainVerdict(True, "header", sat)
    if sat > MAX_SCAN_SATURATION:
        return DomainVerdict(False, "colour", sat)
    food = food_share(image, classifier)
    if food is not None and food > MAX_SCAN_FOOD:
        return DomainVerdict(False, "food", sat, food)
    return DomainVerdict(True, "grey", sat, food)


def asks_about_scan(text: str) -> bool:
    """Whether ``text`` (a question, a sentence) treats a picture as a scan."""
    return SCAN_WORDS.search(text) is not None


def food_share(image: MedicalImage, classifier) -> float | None:
    """The ImageNet food-class mass of ``image``, or None when ``classifier`` cannot tell (absent, random head,
    another label set)."""
    from encoders.base import Classifier

    if not isinstance(classifier, Classifier) or not classifier.trained_head:
        return None
    if classifier.label_subset != "imagenet-1k":
        return None
    from encoders.imagenet_foods import food_mass

    return food_mass(classifier.class_probs(image))
