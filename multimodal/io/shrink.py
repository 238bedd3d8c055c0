"""Bounded-memory downscaling: a decoded image never holds more than the pixel budget.

:func:`block_mean` averages ``f x f`` blocks (area downscaling, no aliasing) while
converting to float32, a band of rows at a time, so the only full-size array is
the decoder's own output; :func:`nearest` keeps every ``f``-th pixel, for values
that must not be averaged (palette indices, lookup-table inputs).

Letters: H/W rows/columns, C channels, f the integer factor.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

BAND_BYTES = 16 * 2**20  # float32 working set per band


def factor(height: int, width: int, max_pixels: int) -> int:
    """The smallest integer ``f`` with ``ceil(H/f) * ceil(W/f) <= max_pixels`` (1 when it already fits)."""
    height, width = int(height), int(width)
    if height * width <= max_pixels:
        return 1
    f = max(2, math.ceil(math.sqrt(height * width / max_pixels)))
    while math.ceil(height / f) * math.ceil(width / f) > max_pixels:
        f += 1
    return f


def block_mean(arr: np.ndarray, f: int, transform: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """``arr`` ``[H, W(, C)]`` -> float32 ``[ceil(H/f), ceil(W/f)(, C)]``, each value the mean of its block.

    ``transform`` maps a band of raw values to float32 (scaling, rescale slope)
    before averaging; edge blocks average the pixels they have. With ``f == 1``
    it is ``transform`` applied band by band (one float32 copy, never two).
    """
    transform = transform or (lambda band: band.astype(np.float32))
    h, w = arr.shape[:2]
    extra = arr.shape[2:]
    out = np.empty((math.ceil(h / f), math.ceil(w / f), *extra), dtype=np.float32)
    row_bytes = w * max(1, int(np.prod(extra))) * 4
    rows = max(f, (BAND_BYTES // max(row_bytes, 1)) // f * f)  # a multiple of f
    full_w = w // f * f
    for r0 in range(0, h, rows):
        band = np.asarray(transform(arr[r0 : r0 + rows]), dtype=np.float32)  # [b, W(, C)]
        b = band.shape[0]
        o0 = r0 // f
        if f == 1:
            out[o0 : o0 + b] = band
            continue
        full_b = b // f * f
        if full_b and full_w:  # whole blocks: one reshape
            body = band[:full_b, :full_w].reshape(full_b // f, f, full_w // f, f, *extra)
            out[o0 : o0 + full_b // f, : full_w // f] = body.mean(axis=(1, 3))
        if full_w < w and full_b:  # right edge: narrower blocks
            edge = band[:full_b, full_w:].reshape(full_b // f, f, w - full_w, *extra)
            out[o0 : o0 + full_b // f, -1] = edge.mean(axis=(1, 2))
        if full_b < b:  # bottom edge: shorter blocks (the mean of row means is the block mean)
            tail = band[full_b:].mean(axis=0)  # [W(, C)]
            r = o0 + full_b // f
            if full_w:
                out[r, : full_w // f] = tail[:full_w].reshape(full_w // f, f, *extra).mean(axis=1)
            if full_w < w:
                out[r, -1] = tail[full_w:].mean(axis=0)
    return out


def nearest(arr: np.ndarray, f: int) -> np.ndarray:
    """Every ``f``-th row and column of ``arr`` (a copy; values untouched)."""
    return np.ascontiguousarray(arr[::f, ::f]) if f > 1 else arr
