"""Heat drawn over the image: only on the centre square the encoder saw, brighter where the heat is."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from multimodal.overlay import DIM, heat_overlay, hot, png_bytes


def test_the_hot_ramp_runs_black_red_yellow_white():
    assert hot(np.array([0.0, 1 / 3, 2 / 3, 1.0])).round(3).tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]]


def test_heat_covers_the_centre_square_and_dims_the_margins():
    grey = np.full((100, 200), 0.5, np.float32)  # wide: the encoder saw columns 50..149
    heat = np.zeros((2, 2), np.float32)
    heat[0, 1] = 1.0  # top-right cell of the seen square
    out = heat_overlay(grey, heat, grid=True, alpha=0.5)
    assert out.shape == (100, 200, 3) and out.dtype == np.uint8
    margin = round(0.5 * DIM * 255)
    assert (out[:, :50] == margin).all() and (out[:, 150:] == margin).all()
    assert out[10, 140, 0] > out[10, 60, 0] and out[90, 140, 0] == out[90, 60, 0]  # heat only in its cell
    assert out[10, 60].tolist() == [128, 128, 128]  # a cold cell keeps the image


def test_big_images_shrink_and_png_round_trips():
    out = heat_overlay(np.zeros((3000, 1500, 3), np.float32), np.ones((7, 7), np.float32), max_side=600)
    assert out.shape == (600, 300, 3)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(out)))), out)
