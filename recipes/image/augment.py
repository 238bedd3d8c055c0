"""Augmented views of one scan for the image recipe: re-windowing, cropping, squaring.

A radiologist sees the same film under many windows; a projector should too.
Grayscale scans with a known display window are re-windowed in modality units
through :func:`multimodal.io.load_image` (so MONOCHROME1 inversion and the
modality LUT still apply); other scans get the same kind of contrast change in
display space. Then a random crop keeps 75-100 % of each side, the image is
padded to a square with black (so the encoder's centre crop keeps everything)
and resized. Everything but :func:`view` is a pure array function.

Letters: H/W pixels, S output side.
"""

from __future__ import annotations

import random

import numpy as np

CENTER_SHIFT = 0.15  # window centre moves by up to this fraction of the width
WIDTH_SCALE = (0.6, 1.4)
MIN_CROP = 0.75
SIZE = 256


def jitter_window(center: float, width: float, rng: random.Random) -> tuple[float, float]:
    """A nearby ``(center, width)``: centre +- 15 % of the width, width x 0.6-1.4."""
    return center + width * rng.uniform(-CENTER_SHIFT, CENTER_SHIFT), width * rng.uniform(*WIDTH_SCALE)


def stretch_contrast(pixels: np.ndarray, rng: random.Random) -> np.ndarray:
    """Display-space windowing of ``[H, W, 3]`` in [0, 1]: a random [lo, hi] band mapped to [0, 1]."""
    lo, hi = rng.uniform(0.0, 0.15), rng.uniform(0.85, 1.0)
    return np.clip((pixels - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def random_crop(pixels: np.ndarray, rng: random.Random, min_scale: float = MIN_CROP) -> np.ndarray:
    """A crop keeping ``min_scale``-100 % of each side at a random position."""
    h, w = pixels.shape[:2]
    ch, cw = max(1, round(h * rng.uniform(min_scale, 1.0))), max(1, round(w * rng.uniform(min_scale, 1.0)))
    top, left = rng.randint(0, h - ch), rng.randint(0, w - cw)
    return pixels[top : top + ch, left : left + cw]  # [h', w', 3]


def pad_square(pixels: np.ndarray) -> np.ndarray:
    """Centre ``[H, W, 3]`` on a black square of side ``max(H, W)``."""
    h, w = pixels.shape[:2]
    side = max(h, w)
    out = np.zeros((side, side, pixels.shape[2]), dtype=pixels.dtype)  # [S', S', 3]
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = pixels
    return out


def to_uint8(pixels: np.ndarray, size: int = SIZE) -> np.ndarray:
    """``[H, W, 3]`` float in [0, 1] -> ``[size, size, 3]`` uint8 (square input, antialiased resize)."""
    from PIL import Image

    img = Image.fromarray((np.clip(pixels, 0.0, 1.0) * 255.0).round().astype(np.uint8))
    return np.asarray(img.resize((size, size), Image.Resampling.LANCZOS))  # [S, S, 3]


def view(path, window: tuple[float, float] | None, rng: random.Random,
         size: int = SIZE) -> tuple[np.ndarray, dict]:
    """One augmented ``[size, size, 3]`` uint8 view of the DICOM at ``path``, and how it was made.

    ``window`` is the scan's default ``(center, width)`` in modality units, or
    None to change contrast in display space instead.
    """
    from multimodal.io import load_image

    if window is not None:
        center, width = jitter_window(*window, rng)
        pixels = load_image(path, window=(center, width)).pixels
        how = {"window": [round(center, 2), round(width, 2)]}
    else:
        pixels = stretch_contrast(load_image(path).pixels, rng)
        how = {"window": "display"}
    crop = random_crop(pixels, rng)
    how["crop"] = [int(crop.shape[0]), int(crop.shape[1])]
    return to_uint8(pad_square(crop), size), how
