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
from .shrink import block_mean, factor
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
            if found is not None and found.kind == IMAGE and found.fmt.upper() not in FORMATS:
                raise UnsupportedFormatError(f"{found.fmt.upper()} images are not supported; please export the "
                                             "photo as JPEG or PNG.") from None
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
    meta = _photo_meta(img)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            f = limits.shrink_factor(height, width)
            target = (-(-width // f), -(-height // f))
            if f > 1 and img.format in ("JPEG", "MPO"):  # the decoder itself scales by 1/2, 1/4 or 1/8
                img.draft(img.mode, target)
            img.load()
            img = shrink_pil(img, target)
            from PIL import ImageOps

            img = ImageOps.exif_transpose(img)
        except Image.DecompressionBombError:
            raise _too_large() from None
        except Exception:  # truncated streams raise OSError, bad chunks SyntaxError/ValueError
            raise CorruptInputError("The image file is damaged or incomplete and cannot be read.") from None
    return MedicalImage(pixels=pil_to_pixels(img), meta=meta, kind="photo")


_REDUCIBLE = {"L", "LA", "RGB", "RGBA", "I", "F", "CMYK"}


def shrink_pil(img, size: tuple[int, int]):
    """A loaded Pillow image area-downscaled to ``size`` (width, height) when it is larger (palette and
    bilevel images by nearest pixel; 16-bit ones through 32-bit integers, which Pillow can resample)."""
    from PIL import Image

    if img.size[0] <= size[0] and img.size[1] <= size[1]:
        return img
    if img.mode in ("P", "PA", "1"):
        return img.resize(size, Image.Resampling.NEAREST)
    if img.mode not in _REDUCIBLE:
        img = img.convert("I" if img.mode.startswith("I;16") else "RGB")
    f = img.size[0] // size[0]
    if f > 1 and -(-img.size[0] // f) == size[0] and -(-img.size[1] // f) == size[1]:
        return img.reduce(f)  # an exact integer factor: plain block means
    return img.resize(size, Image.Resampling.BOX)


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
        return array_to_pixels(np.asarray(img).astype(np.uint16, copy=False))
    if mode == "I":  # 16-bit PNGs open (and reduce) as 32-bit ints holding 0..65535
        arr = np.asarray(img)
        in_range = arr.min() >= 0 and arr.max() <= 65535
        return array_to_pixels(arr.astype(np.uint16) if in_range else arr.astype(np.float32))
    if mode == "F":
        return array_to_pixels(np.asarray(img, dtype=np.float32))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
    elif mode not in ("RGB", "L"):
        img = img.convert("RGB")  # CMYK, YCbCr, P, 1, ...
    return array_to_pixels(np.asarray(img))


def array_to_pixels(arr, max_pixels: int | None = None) -> np.ndarray:
    """A numpy image -> float32 ``[H, W, 3]`` in [0, 1].

    Accepts ``[H, W]``, ``[H, W, C]`` with 1-4 channels; integers are scaled by their
    type's range, floats already in [0, 1] are kept, other floats are min-max scaled.
    Alpha is composited over white. Above ``max_pixels`` the image is area-downscaled
    by an integer factor while it is converted, band by band (:mod:`.shrink`).
    """
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[-1] in (1, 2, 3, 4):
        pass
    elif arr.ndim != 2:
        raise InputError("An image array must be [H, W] or [H, W, C] with 1-4 channels.", code="bad_array")
    if arr.size == 0 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise EmptyInputError("The image has no pixels.")
    f = factor(arr.shape[0], arr.shape[1], max_pixels) if max_pixels else 1
    x = block_mean(arr, f, _unit_transform(arr))  # float32 [h, w(, C)] in [0, 1]
    if x.ndim == 2:
        x = x[..., None]  # [H, W] -> [H, W, 1]
    channels = x.shape[-1]
    if channels in (2, 4):  # gray+alpha / RGBA: composite over the background
        alpha = x[..., -1:]
        x = x[..., :-1] * alpha + np.float32(_BACKGROUND) * (1.0 - alpha)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=2)  # [H, W, 1] -> [H, W, 3]
    return np.ascontiguousarray(np.clip(x, 0.0, 1.0, out=x), dtype=np.float32)


def _unit_transform(arr: np.ndarray):
    """A function mapping a band of ``arr`` to float32 in [0, 1], by the whole array's type or range."""
    if arr.dtype == bool:
        return lambda band: band.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        lo, scale = np.float32(min(info.min, 0)), np.float32(1.0 / (info.max - min(info.min, 0)))
        return lambda band: (band.astype(np.float32) - lo) * scale
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise CorruptInputError("The image contains invalid (non-finite) pixel values.")
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0 and hi <= 1:
            return lambda band: band.astype(np.float32)
        if hi <= lo:
            return lambda band: np.zeros(band.shape, dtype=np.float32)
        return lambda band: (band.astype(np.float32) - np.float32(lo)) * np.float32(1.0 / (hi - lo))
    raise InputError("The image array has an unsupported data type.", code="bad_array")


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
