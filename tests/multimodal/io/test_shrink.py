"""Bounded-memory downscaling: exact block means, edges included, in bands."""

import numpy as np
import pytest

from multimodal.io import shrink


@pytest.mark.parametrize("h,w,budget,expect", [(100, 100, 10_000, 1), (100, 100, 9_999, 2),
                                               (10_000, 10_000, 2048**2, 5),
                                               (7, 3, 1, 7), (3001, 4001, 2048**2, 2)])
def test_factor_is_the_smallest_that_fits(h, w, budget, expect):
    f = shrink.factor(h, w, budget)
    assert f == expect and -(-h // f) * -(-w // f) <= budget


@pytest.mark.parametrize("shape", [(12, 12), (13, 11), (7, 9, 3), (5, 17, 4)])
@pytest.mark.parametrize("f", [1, 2, 3, 4])
def test_block_mean_equals_the_mean_of_each_block(shape, f, monkeypatch):
    monkeypatch.setattr(shrink, "BAND_BYTES", 64)  # force many small bands
    arr = np.random.default_rng(0).integers(0, 4096, size=shape).astype(np.uint16)
    out = shrink.block_mean(arr, f)
    assert out.dtype == np.float32 and out.shape[:2] == (-(-shape[0] // f), -(-shape[1] // f))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = arr[i * f : (i + 1) * f, j * f : (j + 1) * f].astype(np.float64)
            np.testing.assert_allclose(out[i, j], block.mean(axis=(0, 1)), rtol=1e-5)


def test_transform_is_applied_before_averaging():
    arr = np.arange(16, dtype=np.uint8).reshape(4, 4)
    out = shrink.block_mean(arr, 2, transform=lambda b: b.astype(np.float32) / 255)
    np.testing.assert_allclose(out[0, 0], np.mean([0, 1, 4, 5]) / 255, rtol=1e-6)


def test_nearest_keeps_values():
    arr = np.arange(30).reshape(5, 6)
    assert shrink.nearest(arr, 2).tolist() == arr[::2, ::2].tolist() and shrink.nearest(arr, 1) is arr
