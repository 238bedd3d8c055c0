"""Window presets, the three DICOM VOI functions, and auto windowing."""

from __future__ import annotations

import numpy as np
import pytest

from multimodal.errors import InputError
from multimodal.io.windows import PRESETS, apply_window, auto_window, minmax_scale, resolve_window


def test_presets():
    assert {"lung", "mediastinum", "bone", "soft_tissue", "brain"} <= set(PRESETS)
    assert resolve_window("Soft tissue") == PRESETS["soft_tissue"]
    assert resolve_window((40, 80)) == (40.0, 80.0)
    for bad in ("kidney", (1, 0), (np.nan, 3), "x", (1,)):
        with pytest.raises(InputError):
            resolve_window(bad)


def test_linear_matches_dicom_formula():
    c, w = 40.0, 80.0
    x = np.array([-100, c - 0.5 - (w - 1) / 2, c - 0.5, c - 0.5 + (w - 1) / 2, 500], np.float32)
    np.testing.assert_allclose(apply_window(x, c, w), [0, 0, 0.5, 1, 1], atol=1e-6)


def test_linear_exact_and_sigmoid():
    x = np.array([0.0, 50.0, 100.0], np.float32)
    np.testing.assert_allclose(apply_window(x, 50, 100, "LINEAR_EXACT"), [0, 0.5, 1], atol=1e-6)
    s = apply_window(x, 50, 100, "SIGMOID")
    assert s[1] == pytest.approx(0.5) and s[0] < 0.5 < s[2]


def test_auto_window_ignores_outliers():
    rng = np.random.default_rng(0)
    x = rng.normal(1000, 100, (512, 512)).astype(np.float32)
    x[:4, :4] = 60000  # a lead marker
    c, w = auto_window(x)
    assert 900 < c < 1100 and 400 < w < 700
    assert auto_window(np.full((4, 4), 7.0))[1] > 0


def test_minmax():
    np.testing.assert_allclose(minmax_scale(np.array([2.0, 4.0, np.inf])), [0, 1, 0])
    assert minmax_scale(np.ones(3)).max() == 0
