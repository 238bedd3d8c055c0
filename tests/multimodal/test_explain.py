"""Explanations of an answer: Grad-CAM, the answer map over the image tokens, and the weight of each prompt fact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multimodal.config import StackConfig
from multimodal.errors import InputError
from multimodal.explain import CAVEAT, answer_ids, answer_map, explain, fact_weights, gradcam, prompt_parts
from multimodal.io.types import MedicalImage
from multimodal.pipeline import Assistant
from projectors import create_projector, save_projector

TINY = dict(llm="tiny-random", vision="tiny_vit", speech="", max_new_tokens=6, knowledge="none")


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    from encoders import create_encoder

    torch.manual_seed(0)
    img = create_projector("mlp2x_gelu", create_encoder("tiny_vit").out_dim, 64)
    path = save_projector(img, tmp_path_factory.mktemp("proj") / "img", encoder="tiny_vit", llm="tiny-random")
    return Assistant.load(StackConfig(**TINY, image_projector=str(path)))


def _film():
    rng = np.random.default_rng(0)
    return MedicalImage(rng.random((40, 48, 3), dtype=np.float32),
                        {"modality": "CR", "body_part": "CHEST", "sex": "F"}, "dicom")


@pytest.fixture(scope="module")
def answered(assistant):
    """An answer as the pipeline records it (a random tiny LLM writes nothing worth explaining: we give the text)."""
    from multimodal import grounding
    from multimodal.pipeline import Answer, Request

    request = Request("What does the film show?", [_film()])
    plan = assistant.plan(request)
    text = "The chest film of a woman shows clear lungs."
    return Answer(text, request, plan, grounding.check(text, plan.evidence))


def _logprob(assistant, answer, media_edit=None, plan=None):
    enc, media = assistant.encode_plan(answer.request, plan or answer.plan)
    if media_edit:
        media = media_edit(media)
    with torch.no_grad():
        return assistant.backend.answer_logprobs(enc.input_ids, media, answer_ids(assistant.tokenizer, answer.text))


def test_gradient_x_input_is_the_first_order_change_of_the_answer(assistant, answered):
    heat, passes = answer_map(assistant, answered, 1, method="gradient")
    n = assistant.vision.num_tokens()
    assert passes == 1 and heat.method == "gradient-x-input" and heat.raw.size == n
    base = float(_logprob(assistant, answered).sum())
    t = int(np.abs(heat.raw).argmax())
    eps = 1e-3

    def scaled(media):  # token t moved along itself: d logp = grad . x * eps
        image = media["image"].clone()
        image[t] *= 1 + eps
        return {**media, "image": image}

    moved = float(_logprob(assistant, answered, scaled).sum())
    assert (moved - base) / eps == pytest.approx(float(heat.raw.reshape(-1)[t]), rel=0.05, abs=1e-4)


def test_occlusion_scores_are_the_log_probability_lost_with_a_block_hidden(assistant, answered):
    heat, passes = answer_map(assistant, answered, 1, block=2, method="occlusion")
    h, w = heat.raw.shape
    assert passes == -(-h // 2) * -(-w // 2) and heat.method == "occlusion"
    full = float(_logprob(assistant, answered).mean())

    def hide_first_block(media):
        image = media["image"].clone()
        mean = image.mean(0)
        image[[r * w + c for r in range(2) for c in range(2)]] = mean
        return {**media, "image": image}

    hidden = float(_logprob(assistant, answered, hide_first_block).mean())
    assert heat.raw[0, 0] == pytest.approx(full - hidden, abs=1e-5)
    assert heat.raw[0, 1] == heat.raw[1, 0] == heat.raw[0, 0]  # one score per block


def test_each_header_field_the_classifier_and_the_question_are_weighed(assistant, answered):
    parts = prompt_parts(answered.plan)
    names = [p[0] for p in parts]
    assert names == ["Image 1 DICOM modality", "Image 1 DICOM body part", "Image 1 DICOM sex", "Question"]
    without_sex = parts[2][2]
    assert "sex" not in without_sex.media[0].evidence.text and "CHEST" in without_sex.media[0].evidence.text
    weights = fact_weights(assistant, answered, parts)
    assert [w.delta for w in weights] == sorted((w.delta for w in weights), reverse=True)
    full = float(_logprob(assistant, answered).mean())
    sex = next(w for w in weights if w.part == "Image 1 DICOM sex")
    assert sex.text == "F"
    assert sex.delta == pytest.approx(full - float(_logprob(assistant, answered, plan=without_sex).mean()), abs=1e-5)


def test_explain_gathers_the_views_and_says_what_they_are(assistant, answered):
    out = explain(assistant, answered, block=7, method="occlusion")
    assert out.image_index == 1 and out.classifier is None  # a DICOM is read by its header, not the classifier
    assert out.answer_map.raw.size == assistant.vision.num_tokens() and out.passes == 1 + len(out.facts) + 1
    data = out.as_dict()
    assert data["caveat"] == CAVEAT and "not the disease" in CAVEAT
    assert {f["part"] for f in data["facts"]} >= {"Question", "Image 1 DICOM body part"}


def test_bad_requests_are_typed_errors(assistant, answered):
    with pytest.raises(InputError, match="no image 3"):
        explain(assistant, answered, image_index=3)
    with pytest.raises(InputError, match="Unknown explanation method"):
        answer_map(assistant, answered, method="magic")
    with pytest.raises(InputError, match="at least 1"):
        answer_map(assistant, answered, block=0)
    with pytest.raises(InputError, match="no answer to explain"):
        explain(Assistant.load(StackConfig(**TINY)))


@pytest.mark.slow
def test_grad_cam_finds_the_object_on_the_side_it_is():
    """A real ImageNet classifier on a photo pasted into the left half of a grey canvas: the heat is there."""
    from encoders import create_encoder
    from multimodal.io import load_image
    from multimodal.samples import resolve_sample

    encoder = create_encoder("medany-lite0")
    fruit = load_image(str(resolve_sample("sample:fruits.jpg"))).pixels
    side = 224
    from PIL import Image

    small = np.asarray(Image.fromarray((fruit * 255).astype(np.uint8)).resize((side // 2, side)), np.float32) / 255
    canvas = np.full((side, side, 3), 0.5, np.float32)
    canvas[:, : side // 2] = small
    heat = gradcam(encoder, canvas)
    assert heat.method == "grad-cam" and heat.raw.shape == (7, 7) and "Grad-CAM of the classifier" in heat.title
    mass = heat.values
    assert mass[:, :3].sum() > 3 * mass[:, 4:].sum()  # the left three columns hold the object
