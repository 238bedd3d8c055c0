"""faster-whisper over the embedded CTranslate2 weights: the same Transcript, int8 on the CPU."""

from __future__ import annotations

import pytest

pytest.importorskip("faster_whisper")
pytest.importorskip("whisper")

from encoders.registry import create_encoder  # noqa: E402
from multimodal.errors import ModelLoadError  # noqa: E402


def test_a_whisper_without_ctranslate2_weights_cannot_switch():
    with pytest.raises(ModelLoadError, match="faster-whisper needs CTranslate2 weights"):
        create_encoder("tiny_whisper").use_faster_whisper()


@pytest.mark.slow
def test_the_base_model_transcribes_and_translates_with_faster_whisper():
    from multimodal.cancel import Cancelled, stoppable
    from multimodal.io import load_audio
    from multimodal.io.tts import synthesize
    from multimodal.samples import CONSULT_TEXT

    base = create_encoder("medany-whisper-base")
    base.use_faster_whisper(threads=2)
    assert base.transcription_backend == "faster-whisper"
    heard = base.transcribe(load_audio("sample:consult"))
    assert heard.text == CONSULT_TEXT and heard.language == "en" and heard.language_probability > 0.5
    german = base.transcribe(synthesize("Ich habe seit drei Tagen Kopfschmerzen und leichtes Fieber.", voice="de"),
                             timestamps=True)
    assert german.language == "de" and "Tagen" in german.text and "days" in german.english
    assert german.segments and german.english_segments  # both timed
    with stoppable(lambda: True), pytest.raises(Cancelled):
        base.transcribe(load_audio("sample:consult"))
