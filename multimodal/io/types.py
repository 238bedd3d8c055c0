"""Decoded media: what every loader returns and every encoder's preprocessing takes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16_000  # Whisper's rate; every audio loader resamples to it.


@dataclass
class MedicalImage:
    """A decoded, display-ready image.

    ``pixels`` is float32 ``[H, W, 3]`` in ``[0, 1]`` (grayscale replicated to
    three channels) after the Modality/VOI LUTs, windowing and MONOCHROME1
    inversion for DICOM, or EXIF orientation for photos. ``meta`` holds only
    de-identified fields (modality, body part, view, spacing, age band, sex);
    nothing in it identifies a patient.
    """

    pixels: np.ndarray
    meta: dict = field(default_factory=dict)
    kind: str = "photo"  # "dicom" or "photo"

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])


@dataclass
class AudioClip:
    """Mono float32 samples in ``[-1, 1]`` at :data:`SAMPLE_RATE`."""

    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return float(len(self.samples)) / float(self.sample_rate)
