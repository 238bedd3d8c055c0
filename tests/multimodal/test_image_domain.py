"""The image-domain check on real scans (pydicom's test data, the image recipe's scans) and photos."""

import colorsys

import numpy as np
import pytest

from multimodal.image_domain import MAX_SCAN_FOOD, MAX_SCAN_SATURATION, check_domain, saturation
from multimodal.io import load_image
from multimodal.io.types import MedicalImage


def _photo(pixels):
    return MedicalImage(np.asarray(pixels, dtype=np.float32), {}, "photo")


def test_saturation_is_the_mean_hsv_saturation_with_dark_pixels_grey():
    grey = np.full((8, 8, 3), 0.4, dtype=np.float32)
    assert saturation(grey) == 0.0
    half = grey.copy()
    half[:, :4] = (1.0, 0.0, 0.0)  # pure red: saturation 1
    assert saturation(half) == pytest.approx(0.5)
    half[:, :4] = (0.04, 0.0, 0.0)  # red too dark to have a hue
    assert saturation(half) == 0.0
    half[:, :4] = (0.8, 0.4, 0.4)  # (0.8 - 0.4) / 0.8
    assert saturation(half) == pytest.approx(0.25)


def test_a_dicom_naming_an_imaging_modality_is_a_scan_whatever_its_colours():
    rng = np.random.default_rng(0)
    doppler = MedicalImage(rng.random((16, 16, 3), dtype=np.float32), {"modality": "US"}, "dicom")
    assert check_domain(doppler).as_dict()["reason"] == "header" and check_domain(doppler).scan
    secondary = MedicalImage(doppler.pixels, {"modality": "OT"}, "dicom")  # no imaging modality: the pixels decide
    assert not check_domain(secondary).scan and check_domain(secondary).reason == "colour"


def test_every_medical_picture_of_the_recipe_is_a_scan_without_its_header():
    """The 26 source groups of the image recipe, each picture given as a photo (no header): all but the three
    colour pictures that are no scan (a colour test pattern, a face photograph and colour bars) are scans."""
    from recipes.image.scans import usable_scans

    firsts = {}
    for scan in usable_scans():
        firsts.setdefault(scan.group, scan)
    judged = {s.name: check_domain(_photo(load_image(s.path).pixels)) for s in firsts.values()}
    assert len(judged) == 26
    assert {name for name, v in judged.items() if not v.scan} == {
        "ExplVR_BigEnd.dcm", "OT-PAL-8-face.dcm", "SC_rgb.dcm"}
    medical = [v.saturation for name, v in judged.items() if name not in ("ExplVR_BigEnd.dcm", "OT-PAL-8-face.dcm",
                                                                           "SC_rgb.dcm")]
    assert max(medical) < 0.15 < MAX_SCAN_SATURATION  # the ultrasound with a colour overlay, color-pl.dcm: 0.146
    as_dicom = {s.name: check_domain(load_image(s.path)) for s in firsts.values()}
    assert {name for name, v in as_dicom.items() if not v.scan} == {"OT-PAL-8-face.dcm", "SC_rgb.dcm"}


def test_colour_photos_are_no_scans():
    fruits = load_image("sample:fruits.jpg")
    verdict = check_domain(fruits)
    assert not verdict.scan and verdict.reason == "colour" and verdict.saturation == pytest.approx(0.60, abs=0.01)
    rng = np.random.default_rng(0)
    for _ in range(20):  # generated colour pictures: smooth fields of random hues, saturations 0.3-1
        hsv = np.stack([rng.random((8, 8)), rng.uniform(0.3, 1.0, (8, 8)), rng.uniform(0.3, 1.0, (8, 8))], axis=-1)
        rgb = np.array([[colorsys.hsv_to_rgb(*px) for px in row] for row in hsv])  # [8, 8, 3]
        assert not check_domain(_photo(np.kron(rgb, np.ones((16, 16, 1))))).scan


def test_a_grey_picture_without_a_classifier_counts_as_a_scan():
    grey = load_image("sample:fruits.jpg").pixels.mean(axis=2, keepdims=True).repeat(3, axis=2)
    verdict = check_domain(_photo(grey))
    assert verdict.scan and verdict.reason == "grey" and verdict.food is None


@pytest.mark.slow
def test_the_imagenet_head_tells_a_grey_meal_photo_from_grey_scans():
    from encoders import create_encoder
    from recipes.image.scans import usable_scans

    lite0 = create_encoder("medany-lite0")
    grey = load_image("sample:fruits.jpg").pixels.mean(axis=2, keepdims=True).repeat(3, axis=2)
    meal = check_domain(_photo(grey), lite0)
    assert not meal.scan and meal.reason == "food" and meal.food > 0.9
    firsts = {}
    for scan in usable_scans():
        firsts.setdefault(scan.group, scan)
    food = {s.name: check_domain(_photo(load_image(s.path).pixels), lite0).food for s in firsts.values()
            if s.name not in ("ExplVR_BigEnd.dcm", "OT-PAL-8-face.dcm", "SC_rgb.dcm")}
    assert len(food) == 23 and max(food.values()) <= 0.21 < MAX_SCAN_FOOD  # the chest film's "head cabbage": 0.20
