"""Bundled samples: resolvable by name on every install, with the provenance their README records."""

import re

import pytest

from multimodal.errors import InputError
from multimodal.io import load_image
from multimodal.io.image import is_grayscale
from multimodal.paths import file_sha256
from multimodal.samples import ASSETS, resolve_sample


def test_fruit_photo_is_bundled_with_the_checksum_its_readme_records():
    path = resolve_sample("sample:fruits.jpg")
    recorded = re.search(r"sha256 of `fruits.jpg`: `([0-9a-f]{64})`", (ASSETS / "README.md").read_text()).group(1)
    assert file_sha256(path) == recorded
    image = load_image("sample:fruits.jpg")
    assert image.kind == "photo" and image.size == (480, 512) and not is_grayscale(image.pixels)


def test_dicom_sample_comes_from_pydicom_data():
    image = load_image("sample:RG1_UNCR.dcm")
    assert image.kind == "dicom" and image.meta["modality"] == "CR"


def test_unknown_sample_names_the_ones_that_exist():
    with pytest.raises(InputError, match="sample:fruits.jpg"):
        resolve_sample("sample:nothing.png")
