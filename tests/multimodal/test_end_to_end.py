"""From files to answer on the embedded real stack (SmolLM2, Whisper tiny.en, EfficientNet-Lite0)."""

import pytest

from multimodal.pipeline import Assistant, Request
from multimodal.samples import CONSULT_TEXT


@pytest.fixture(scope="module")
def assistant():
    return Assistant.load()  # the default StackConfig: embedded weights, no network


@pytest.mark.slow
def test_chest_film_and_consult_clip_are_answered_from_real_weights(assistant):
    from multimodal.io import load_audio, load_image

    film, clip = load_image("sample:RG1_UNCR.dcm"), load_audio("sample:consult")
    assert film.kind == "dicom" and film.meta["modality"] == "CR"
    messages, media, _ = assistant.build_messages(Request("What next?", [film], [clip]))
    prompt = messages[-1]["content"]
    assert "DICOM modality CR" in prompt
    heard = prompt.split('transcript: "')[1].split('"')[0]
    words = lambda t: [w.strip(".,").lower() for w in t.split()]  # noqa: E731
    assert words(heard) == words(CONSULT_TEXT)  # Whisper hears the synthesized consult exactly
    # The shipped scan projector is the default: the film's 49 tokens are spliced; audio goes by transcript.
    assert set(media) == {"image"} and media["image"][0].shape == (1, 3, 224, 224)
    assert prompt.count("<image>") == 1 and "<audio>" not in prompt
    assert assistant.info["image"]["projector"]["sha256"].startswith("4669307f")

    answer = assistant.answer("What should the patient do next?", images=[film], audios=[clip])
    timings = assistant.last_timings
    assert len(answer.split()) >= 5 and timings.new_tokens > 5 and timings.first_token_s > 0

