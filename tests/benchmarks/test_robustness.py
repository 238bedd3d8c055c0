"""The robustness benchmark: its corruptions, the files they make, and a CI-sized run holding the evidence path to
its threshold at severities 1-2 (every corrupted scan still a scan, its evidence facts unchanged)."""

import numpy as np
import pytest

from benchmarks.robustness import (
    CORRUPTIONS,
    answer_scores,
    cases,
    corrupted,
    describe_all,
    downsample,
    evidence_scores,
    fields_named,
    gamma_contrast,
    gaussian_blur,
    jpeg_roundtrip,
    not_scan_tables,
    rewindow,
    rotate,
)
from multimodal.io import load_image

CI_SCANS = ("MR_small.dcm", "J2K_pixelrep_mismatch.dcm", "RG3_UNCR.dcm")  # held-out MR and CT, an extremity film


def test_pixel_corruptions_on_arrays_counted_by_hand():
    assert downsample(np.arange(16.0).reshape(4, 4), 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    # gamma 2 then contrast 0.5 about mid-grey: 0 -> 0.25, 0.5 -> 0.5 + 0.5 * (0.25 - 0.5), 1 -> 0.75
    assert gamma_contrast(np.array([[0.0, 0.5, 1.0]]), (2.0, 0.5)).tolist() == [[0.25, 0.375, 0.75]]
    # a window moved 0.1 widths up and 0.9 as wide: (u - 0.6) / 0.9 + 0.5
    assert rewindow(np.array([0.15, 0.6, 1.0]), (0.1, 0.9)) == pytest.approx([0.0, 0.5, 0.4 / 0.9 + 0.5])
    square = np.arange(9.0).reshape(3, 3)
    assert rotate(square, 90) == pytest.approx(np.rot90(square))
    delta = np.zeros((41, 37))
    delta[20, 18] = 1.0
    g = np.exp(-0.5 * np.arange(-3, 4) ** 2)
    g /= g.sum()
    blurred = gaussian_blur(delta, 256 / 41)  # sigma 1 px on a 41-pixel side
    assert blurred[17:24, 15:22] == pytest.approx(np.outer(g, g), abs=1e-4) and blurred.sum() == pytest.approx(1.0)
    noisy = np.random.default_rng(0).random((64, 64)) * 1000
    assert np.abs(jpeg_roundtrip(noisy, 95) - noisy).mean() < np.abs(jpeg_roundtrip(noisy, 10) - noisy).mean()


@pytest.fixture(scope="module")
def mr():
    dicom, png = cases(("MR_small.dcm",))
    return dicom, png


def test_the_clean_rewrite_decodes_to_the_original_picture(mr):
    dicom, png = mr
    original = load_image("sample:MR_small.dcm")
    assert np.array_equal(load_image(dicom.clean).pixels, original.pixels)
    assert np.abs(load_image(png.clean).pixels - original.pixels).max() <= 0.5 / 255 + 1e-6  # 8-bit export


def test_header_corruptions_change_the_header_and_pixel_ones_the_pixels(mr):
    dicom, png = mr
    clean = load_image(dicom.clean)
    inverted = load_image(corrupted(dicom, CORRUPTIONS["inverted photometric"], 1))
    assert (clean.meta["photometric"], inverted.meta["photometric"]) == ("MONOCHROME2", "MONOCHROME1")
    assert np.allclose(inverted.pixels, 1.0 - clean.pixels)
    assert corrupted(dicom, CORRUPTIONS["inverted photometric"], 2) is None  # one level only
    window = load_image(corrupted(dicom, CORRUPTIONS["wrong VOI window"], 1)).meta["window"]
    assert (window["center"], window["width"]) == (600 + 0.1 * 1600, 0.9 * 1600)  # the file's own is 600 / 1600
    small = load_image(corrupted(dicom, CORRUPTIONS["downsampling"], 2))
    assert small.size == (22, 22) and small.meta["spacing_mm"] == (0.9375, 0.9375)  # 3 x 0.3125 mm
    assert load_image(corrupted(png, CORRUPTIONS["downsampling"], 1)).size == (32, 32)
    noisy = load_image(corrupted(dicom, CORRUPTIONS["gaussian noise"], 5))
    assert noisy.meta["window"] == clean.meta["window"] and not np.array_equal(noisy.pixels, clean.pixels)


def test_answers_are_read_as_the_fields_they_name():
    choices = {"modality": {"CR", "CT", "MR"}, "body_part": {"CHEST", "HEAD"}}
    assert fields_named("This is a CT image of the head.", choices) == {"modality": "CT", "body_part": "HEAD"}
    assert fields_named("A CT or an MR of the chest.", choices) == {"modality": None, "body_part": "CHEST"}
    dicom, png = cases(("MR_small.dcm",))
    answers = {("DICOM", "clean", 0): {"MR_small.dcm": "This is an MR image."},
               ("DICOM", "blur", 1): {"MR_small.dcm": "This is an MR image of the head."},
               ("DICOM", "blur", 2): {"MR_small.dcm": "This is a CT image."}}
    scores = answer_scores(answers, [dicom, png], choices)
    # MR_small records its modality only: naming a body part changes the fields, not the accuracy
    assert scores[("DICOM", "blur", 1)] == {"n": 1, "same": 0.0, "accuracy": 1.0}
    assert scores[("DICOM", "blur", 2)] == {"n": 1, "same": 0.0, "accuracy": 0.0}
    assert scores[("DICOM", "clean", 0)] == {"n": 1, "same": 1.0, "accuracy": 1.0}


def test_the_not_scan_table_counts_answers_per_question():
    verdict = {"scan": False, "reason": "colour", "saturation": 0.6, "food": None}
    says = [(True, True), (False, True), (False, False)]  # (first draft says it, guarded answer says it)
    rows = [{"name": f"photo {i}", "verdict": verdict, "check_ms": 4.0,
             "answers": [{"first_says": f, "final_says": g} for f, g in says]} for i in range(2)]
    lines = not_scan_tables(rows)
    assert "| photo 0 | no scan (colour: saturation 0.60) | 4 ms |" in lines
    assert lines[-3:] == [
        "| What does this chest film show, and what should the patient ask their doctor? | yes | 2/2 | 2/2 |",
        "| What modality, body part and view is this scan? | yes | 0/2 | 2/2 |",
        "| Describe this image. | no | 0/2 | 0/2 |"]


@pytest.mark.slow
def test_mild_corruptions_keep_every_scan_a_scan_and_its_evidence_facts():
    """Severities 1-2 of every corruption, on three real scans as DICOM and as PNG, through the evidence path of the
    default vision encoder (its ImageNet head sees the PNGs): all are still scans, and the facts the answer is held
    to stay those of the clean file; a DICOM's header line stays word for word."""
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant

    assistant = Assistant.load(StackConfig(llm="tiny-random", speech="", knowledge="none", image_projector="none"))
    scores = evidence_scores(describe_all(assistant, cases(CI_SCANS), severities=(1, 2)))
    assert len(scores) == 2 * (7 * 2 + 1)
    assert all(s["scan"] == 1.0 and s["facts"] == 1.0 for s in scores.values()), scores
    assert all(s["line"] == 1.0 for (fmt, _, _), s in scores.items() if fmt == "DICOM")
