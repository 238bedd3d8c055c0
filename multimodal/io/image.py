"""Photos and exported images (PNG/JPEG/WebP/TIFF/BMP/GIF) -> :class:`MedicalImage`.

Pillow reads only the header on ``open``; the pixel budget is checked there,
before any decoding, so a decompression bomb (a tiny file declaring a
gigapixel image) is refused at the cost of a few hundred bytes. Phone photos
are turned upright from their EXIF orientation. Grayscale, 16-bit and alpha
images all come out as float32 ``[H, W, 3]`` in [0, 1].
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from ..errors import CorruptInputError, EmptyInputError, InputError, UnsupportedFormatError, require
from .limits import DEFAULT_LIMITS, InputLimits
from .types import MedicalImage

FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF", "MPO")
_BACKGROUND = 1.0  # transparent areas are composited over white (photos on a plate/page)


def read_image(data: bytes, *, limits: InputLimits = DEFAULT_LIMITS) -> MedicalImage:
    """Decode encoded image bytes into a :class:`MedicalImage` (``kind="photo"``)."""
    Image = require("PIL.Image", "all")
    from PIL import UnidentifiedImageError

    if len(data) == 0:
        raise EmptyInputError("The image file is empty.")
    limits.check_bytes(len(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own bomb warning: our budget is checked below
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            from .sniff import IMAGE, SNIFF_BYTES, sniff

            found = sniff(data[:SNIFF_BYTES])
            if found is not None and found.kind == IMAGE:  # right signature, broken header
                raise CorruptInputError("The image file is damaged and cannot be read.") from None
            raise UnsupportedFormatError("The file is not an image format MedAny reads "
                                         "(PNG, JPEG, WebP, TIFF, BMP, GIF).") from None
        except Image.DecompressionBombError:
            raise _too_large() from None
        except Exception:
            raise CorruptInputError("The image file is damaged and cannot be read.") from None
    if img.format not in FORMATS:
        raise UnsupportedFormatError(f"{img.format} images are not supported; please send PNG or JPEG.")
    width, height = img.size
    if width <= 0 or height <= 0:
        raise EmptyInputError("The image has no pixels.")
    limits.check_pixels(height, width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img.load()
            from PIL import ImageOps

            img = ImageOps.exif_transpose(img)
        except Image.DecompressionBombError:
            raise _too_large() from None
        except Exception:  # truncated streams raise OSError, bad chunks SyntaxError/ValueError
            raise CorruptInputError("The image file is damaged or incomplete and cannot be read.") from None
    return MedicalImage(pixels=pil_to_pixels(img), meta=_photo_meta(img), kind="photo")


def _too_large():
    from ..errors import InputTooLargeError

    return InputTooLargeError("The image declares too many pixels to decode safely.")


def _photo_meta(img) -> dict:
    # Only what helps the model; EXIF (GPS, device, time) never leaves this function.
    return {"format": img.format or "unknown", "rows": img.size[1], "cols": img.size[0], "mode": img.mode}


def pil_to_pixels(img) -> np.ndarray:
    """A Pillow image (any mode) -> float32 ``[H, W, 3]`` in [0, 1]."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return array_to_pixels(np.asarray(img).astype(np.uint16))
    if mode == "I":  # 16-bit PNGs open as 32-bit ints holding 0..65535
        arr = np.asarray(img)
        return array_to_pixels(arr.astype(np.uint16) if arr.min() >= 0 and arr.max() <= 65535 else arr.astype(np.float32))
    if mode == "F":
        return array_to_pixels(np.asarray(img, dtype=np.float32))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
    elif mode not in ("RGB", "L"):
        img = img.convert("RGB")  # CMYK, YCbCr, P, 1, ...
    return array_to_pixels(np.asarray(img))


def array_to_pixels(arr) -> np.ndarray:
    """A numpy image -> float32 ``[H, W, 3]`` in [0, 1].

    Accepts ``[H, W]``, ``[H, W, 1|3|4]``; integers are scaled by their type's
    range, floats already in [0, 1] are kept, other floats are min-max scaled.
    Alpha is composited over white.
    """
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[-1] in (1, 2, 3, 4):
        pass
    elif arr.ndim != 2:
        raise InputError("An image array must be [H, W] or [H, W, C] with 1-4 channels.", code="bad_array")
    if arr.size == 0 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise EmptyInputError("The image has no pixels.")
    if arr.dtype == bool:
        x = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        x = arr.astype(np.float32)
        if info.min < 0:
            x = (x - info.min) / np.float32(info.max - info.min)
        else:
            x = x / np.float32(info.max)
    elif np.issubdtype(arr.dtype, np.floating):
        x = arr.astype(np.float32)
        if not np.isfinite(x).all():
            raise CorruptInputError("The image contains invalid (non-finite) pixel values.")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            x = (x - lo) / np.float32(hi - lo) if hi > lo else np.zeros_like(x)
    else:
        raise InputError("The image array has an unsupported data type.", code="bad_array")
    if x.ndim == 2:
        x = x[..., None]  # [H, W] -> [H, W, 1]
    channels = x.shape[-1]
    if channels in (2, 4):  # gray+alpha / RGBA: composite over the background
        alpha = x[..., -1:]
        x = x[..., :-1] * alpha + np.float32(_BACKGROUND) * (1.0 - alpha)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=2)  # [H, W, 1] -> [H, W, 3]
    return np.ascontiguousarray(np.clip(x, 0.0, 1.0), dtype=np.float32)


def is_grayscale(pixels: np.ndarray, tolerance: float = 4 / 255, coloured_share: float = 0.005) -> bool:
    """True when the ``[H, W, 3]`` image has (nearly) equal channels: a radiograph, not a colour photo.

    At most ``coloured_share`` of the pixels may stray more than ``tolerance``
    from their grey (JPEG chroma noise does; a meal photo does everywhere).
    Checked on a strided subsample (at most ~256 x 256 points), so a huge photo costs little.
    """
    step = max(1, max(pixels.shape[:2]) // 256)
    p = np.asarray(pixels[::step, ::step, :3], dtype=np.float32)
    if p.size == 0:
        return True
    deviation = np.abs(p - p.mean(axis=2, keepdims=True)).max(axis=2)  # [h, w]
    return float((deviation > tolerance).mean()) <= coloured_share
