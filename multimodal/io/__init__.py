"""Input pipeline: DICOM, photos and audio in; validated, de-identified media out.

Heavy dependencies (pydicom, Pillow, PyAV) are imported only when a loader runs.
"""

from .limits import DEFAULT_LIMITS, InputLimits
from .loader import load_audio, load_image, load_media, read_bytes
from .types import SAMPLE_RATE, AudioClip, MedicalImage

__all__ = [
    "DEFAULT_LIMITS",
    "InputLimits",
    "load_audio",
    "load_image",
    "load_media",
    "read_bytes",
    "SAMPLE_RATE",
    "AudioClip",
    "MedicalImage",
]
