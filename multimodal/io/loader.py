"""One entry point per input: anything a user can upload -> a decoded, validated medium.

Sources accepted everywhere: a path (``str`` / ``PathLike``), raw bytes, or a
binary file object; images also take a PIL image or a numpy array. The kind
is sniffed from the content, never from the file name, and every size is
checked before the input is read in full.
"""

from __future__ import annotations

import os
import stat
from typing import Union

import numpy as np

from ..errors import EmptyInputError, InputError, UnsupportedFormatError
from ..samples import is_sample, resolve_sample
from .audio import read_audio
from .dicom import read_dicom
from .image import array_to_pixels, pil_to_pixels, read_image, shrink_pil
from .limits import DEFAULT_LIMITS, InputLimits
from .sniff import AUDIO, DICOM, IMAGE, SNIFF_BYTES, describe, sniff
from .types import AudioClip, MedicalImage

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, "BinaryIO", "PIL.Image.Image", np.ndarray]  # noqa: F821
def read_bytes(source, limits: InputLimits = DEFAULT_LIMITS) -> bytes:
    """The encoded bytes of ``source`` (path, bytes-like or binary file), size-checked first."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        limits.check_bytes(len(data))
        return data
    if is_sample(source):
        source = resolve_sample(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            # Non-blocking open, then fstat: a FIFO would block a plain open() forever, and a
            # device (/dev/zero) never ends; only regular files are read, and never past the limit.
            fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as fh:
                mode = os.fstat(fh.fileno()).st_mode
                if stat.S_ISDIR(mode):
                    raise IsADirectoryError
                if not stat.S_ISREG(mode):
                    raise InputError("The input is not a regular file (a device, pipe or socket); "
                                     "save it as a file first.", code="not_a_file")
                limits.check_bytes(os.fstat(fh.fileno()).st_size)
                data = fh.read(limits.max_bytes + 1)
            limits.check_bytes(len(data))
            return data
        except FileNotFoundError:
            raise InputError("The file could not be found.", code="not_found") from None
        except IsADirectoryError:
            raise InputError("A folder was given where a file was expected.", code="not_a_file") from None
        except PermissionError:
            raise InputError("The file cannot be read (permission denied).", code="unreadable") from None
        except OSError as exc:  # never echo the path: folder names often carry patient names
            raise InputError(f"The file cannot be read ({exc.strerror or type(exc).__name__}).",
                             code="unreadable") from None
    if hasattr(source, "read"):
        data = source.read(limits.max_bytes + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise InputError("The upload must be opened in binary mode.", code="bad_source")
        limits.check_bytes(len(data))
        return bytes(data)
    raise InputError("Unsupported input: give a file path, bytes or an open binary file.", code="bad_source")


def _is_pil(obj) -> bool:
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "getbands")


def load_image(
    source: Source,
    *,
    window: str | tuple[float, float] | None = None,
    frame: int | None = None,
    limits: InputLimits = DEFAULT_LIMITS,
) -> MedicalImage:
    """Load a DICOM, photo, PIL image or numpy array as a :class:`MedicalImage`.

    ``window`` and ``frame`` apply to DICOM only (see :func:`read_dicom`).
    Raises a subclass of :class:`~multimodal.errors.InputError` for anything unusable.
    """
    if isinstance(source, np.ndarray):
        if source.ndim >= 2:
            limits.check_pixels(source.shape[0], source.shape[1])
        return MedicalImage(pixels=array_to_pixels(source, limits.max_decoded_pixels), meta={"format": "array"},
                            kind="photo")
    if _is_pil(source):
        limits.check_pixels(source.size[1], source.size[0])
        from PIL import ImageOps

        f = limits.shrink_factor(source.size[1], source.size[0])
        small = shrink_pil(source, (-(-source.size[0] // f), -(-source.size[1] // f)))
        return MedicalImage(pixels=pil_to_pixels(ImageOps.exif_transpose(small)), meta={"format": "pil"},
                            kind="photo")
    data = read_bytes(source, limits)
    kind = _kind(data)
    if kind == DICOM:
        return read_dicom(data, window=window, frame=frame, limits=limits)
    if kind == IMAGE:
        return read_image(data, limits=limits)
    raise UnsupportedFormatError(f"Expected an image, but the file is {describe(sniff(data[:SNIFF_BYTES]))}.")


def load_audio(source: Source, *, limits: InputLimits = DEFAULT_LIMITS) -> AudioClip:
    """Load an audio file (path, bytes or binary file) as a mono 16 kHz :class:`AudioClip`."""
    data = read_bytes(source, limits)
    if _kind(data) != AUDIO:
        raise UnsupportedFormatError(f"Expected a recording, but the file is {describe(sniff(data[:SNIFF_BYTES]))}.")
    return read_audio(data, limits=limits)


def load_media(
    source: Source,
    *,
    window: str | tuple[float, float] | None = None,
    frame: int | None = None,
    limits: InputLimits = DEFAULT_LIMITS,
) -> MedicalImage | AudioClip:
    """Load any supported input, dispatching on its content: image or audio."""
    if isinstance(source, np.ndarray) or _is_pil(source):
        return load_image(source, limits=limits)
    data = read_bytes(source, limits)
    kind = _kind(data)
    if kind == AUDIO:
        return read_audio(data, limits=limits)
    if kind == DICOM:
        return read_dicom(data, window=window, frame=frame, limits=limits)
    return read_image(data, limits=limits)


def _kind(data: bytes) -> str:
    if len(data) == 0:
        raise EmptyInputError("The file is empty.")
    found = sniff(data[:SNIFF_BYTES])
    if found is None:
        raise UnsupportedFormatError(
            "The file is not a recognised format. MedAny reads DICOM, PNG, JPEG, WebP, TIFF, "
            "and WAV, FLAC, MP3, OGG, M4A, WebM recordings."
        )
    return found.kind
