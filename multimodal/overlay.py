"""A heat map drawn over the image it explains, as the encoder saw it, and saved as PNG.

Image encoders see the centre square of an image (short side resized, centre
cropped: :func:`encoders.base.image_to_tensor`), so a ``[h, w]`` token grid
covers that square only; the margins they never saw stay uncoloured and are
dimmed. The colour ramp is "hot" (black, red, yellow, white), written out here.

Letters: H/W image, h/w grid.
"""

from __future__ import annotations

import io

import numpy as np

DIM = 0.45
"""Brightness left to the margins the encoder did not see."""


def hot(values: np.ndarray) -> np.ndarray:
    """``[...]`` in [0, 1] -> ``[..., 3]`` float RGB on the hot ramp."""
    v = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)[..., None] * 3.0
    return np.clip(np.concatenate([v, v - 1.0, v - 2.0], axis=-1), 0.0, 1.0)


def heat_overlay(pixels: np.ndarray, heat: np.ndarray, *, grid: bool = False, alpha: float = 0.5,
                 max_side: int = 768) -> np.ndarray:
    """``heat`` ``[h, w]`` in [0, 1] over ``pixels`` (``[H, W]`` or ``[H, W, 3]`` in [0, 1]) -> uint8 ``[H', W', 3]``.

    The image is shrunk to at most ``max_side``; ``grid`` upsamples the cells as blocks (one per token),
    else bilinearly. Heat is blended where it is, in proportion to its value.
    """
    from PIL import Image

    base = np.asarray(pixels, dtype=np.float32)
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=-1)
    base = np.clip(base[..., :3], 0.0, 1.0)
    h0, w0 = base.shape[:2]
    scale = min(1.0, max_side / max(h0, w0))
    H, W = max(1, round(h0 * scale)), max(1, round(w0 * scale))
    if (H, W) != (h0, w0):
        base = np.asarray(Image.fromarray((base * 255 + 0.5).astype(np.uint8)).resize((W, H), Image.Resampling.BOX),
                          dtype=np.float32) / 255.0
    side = min(H, W)
    top, left = (H - side) // 2, (W - side) // 2
    resample = Image.Resampling.NEAREST if grid else Image.Resampling.BILINEAR
    cells = Image.fromarray(np.asarray(heat, dtype=np.float32), mode="F").resize((side, side), resample)
    square = np.clip(np.asarray(cells, dtype=np.float32), 0.0, 1.0)  # [side, side]
    out = base * DIM
    seen = base[top:top + side, left:left + side]
    weight = (alpha * square)[..., None]
    out[top:top + side, left:left + side] = seen * (1 - weight) + hot(square) * weight
    return (np.clip(out, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    """uint8 ``[H, W, 3]`` -> PNG file bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()
