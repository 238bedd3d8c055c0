"""Display windows: named presets, the DICOM VOI functions, and auto windowing.

A window maps modality values (Hounsfield units for CT, detector values for
CR/DX) to display intensity in [0, 1]. Presets are the usual radiology ones;
auto windowing, for projection radiographs without a usable window, takes
robust percentiles of the image so a few collimator or marker pixels do not
wash the film out.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

# (center, width) in Hounsfield units: the conventional CT reading windows.
PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "soft_tissue": (50.0, 400.0),
    "brain": (40.0, 80.0),
    "liver": (60.0, 160.0),
    "subdural": (75.0, 215.0),
}
_ALIASES = {"soft tissue": "soft_tissue", "soft-tissue": "soft_tissue", "softtissue": "soft_tissue",
            "abdomen": "soft_tissue", "mediastinal": "mediastinum", "head": "brain"}

VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")

# Modalities where the stored window is often missing or vendor-specific and
# a percentile window reads better.
AUTO_WINDOW_MODALITIES = frozenset({"CR", "DX", "MG", "RF", "XA", "PX", "IO"})


def resolve_window(spec: str | tuple[float, float]) -> tuple[float, float]:
    """``"lung"`` / ``(center, width)`` -> ``(center, width)``; ``InputError`` otherwise."""
    if isinstance(spec, str):
        key = spec.strip().lower()
        key = _ALIASES.get(key, key)
        if key not in PRESETS:
            raise InputError(
                f"Unknown window preset; choose one of: {', '.join(sorted(PRESETS))}, "
                "or give (center, width).",
                code="bad_window",
            )
        return PRESETS[key]
    try:
        center, width = (float(v) for v in spec)
    except (TypeError, ValueError):
        raise InputError("A window must be a preset name or (center, width).", code="bad_window") from None
    if not (np.isfinite(center) and np.isfinite(width)) or width <= 0:
        raise InputError("A window needs a finite center and a positive width.", code="bad_window")
    return center, width


def apply_window(
    values: np.ndarray, center: float, width: float, function: str = "LINEAR"
) -> np.ndarray:
    """Map ``values`` to float32 [0, 1] with a DICOM VOI function (PS3.3 C.11.2.1.2/3).

    ``LINEAR`` is the DICOM default (width >= 1, the half-pixel offsets of the
    standard); ``LINEAR_EXACT`` has no offsets; ``SIGMOID`` is the logistic curve.
    """
    x = np.asarray(values, dtype=np.float32)
    function = (function or "LINEAR").upper()
    if function == "SIGMOID":
        out = 1.0 / (1.0 + np.exp(-4.0 * (x - np.float32(center)) / np.float32(max(width, 1e-6))))
        return out.astype(np.float32, copy=False)
    if function == "LINEAR_EXACT":
        lo, span = center - width / 2.0, max(width, 1e-6)
    else:  # LINEAR (and anything unknown, as the standard's default)
        width = max(width, 1.0)
        lo, span = center - 0.5 - (width - 1.0) / 2.0, max(width - 1.0, 1e-6)
    out = (x - np.float32(lo)) * np.float32(1.0 / span)
    return np.clip(out, 0.0, 1.0, out=out)


def auto_window(values: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> tuple[float, float]:
    """A robust (center, width) from percentiles of ``values``.

    Computed on a strided subsample of at most ~250k pixels: the percentiles of
    a 3.6 Mpx chest film do not move measurably, and it keeps this O(1) in the
    image size.
    """
    flat = np.asarray(values).reshape(-1)
    step = max(1, flat.size // 250_000)
    sample = flat[::step].astype(np.float32, copy=False)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.5, 1.0
    lo, hi = np.percentile(sample, [low_pct, high_pct])
    if hi <= lo:  # flat image: any window shows it as mid-grey or a constant
        lo, hi = float(sample.min()), float(sample.max())
    width = max(float(hi - lo), 1.0 if hi - lo >= 1.0 else 1e-6)
    return float(lo + (hi - lo) / 2.0), width


def minmax_scale(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the finite min and max (a constant image becomes zeros)."""
    x = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros_like(x, dtype=np.float32)
    lo, hi = float(x[finite].min()), float(x[finite].max())
    if not finite.all():  # NaN/inf pixels show as the darkest value
        x = np.where(finite, x, lo).astype(np.float32)
    if hi <= lo:
        return np.zeros_like(x, dtype=np.float32)
    return ((x - lo) / (hi - lo)).astype(np.float32, copy=False)
