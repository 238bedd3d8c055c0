"""Spoken replies: which voice speaks a language, sentence by sentence, and the errors a caller can fix."""

from __future__ import annotations

import numpy as np
import pytest

from multimodal.errors import EmptyInputError, InputError, InputTooLargeError
from multimodal.io import voice


def test_each_language_gets_its_voice():
    english = voice.choose_voice("en")
    assert english == (voice.Voice("hibari", "heart", "en") if voice.hibari_installed()
                       else voice.Voice("espeak", "en-us", "en"))
    assert voice.choose_voice("es") == voice.Voice("espeak", "es", "es")
    assert voice.choose_voice("zh") == voice.Voice("espeak", "cmn", "zh")  # espeak-ng calls Mandarin cmn
    assert voice.choose_voice("de", "alloy") == voice.Voice("espeak", "de", "de")  # an OpenAI name: the default
    assert voice.choose_voice("en", "espeak:en-gb") == voice.Voice("espeak", "en-gb", "en")


@pytest.mark.parametrize("language, name, message", [("xx", None, "No installed voice speaks 'xx'"),
                                                     ("en", "robot", "Unknown voice 'robot'"),
                                                     ("en", "espeak:", "Unknown voice")])
def test_unknown_voices_are_typed_errors(language, name, message):
    with pytest.raises(InputError, match=message) as err:
        voice.choose_voice(language, name)
    assert err.value.code == "unknown_voice"


def test_sentences_are_split_where_a_listener_would_pause():
    text = "Dr. Smith will see you. Take it twice a day!\nIs that clear? J. K. Rowling agrees."
    assert voice.split_sentences(text) == ["Dr. Smith will see you.", "Take it twice a day!", "Is that clear?",
                                           "J. K. Rowling agrees."]


def test_a_reply_is_spoken_sentence_by_sentence_and_the_same_each_time():
    pieces = list(voice.speak_sentences("Rest today. Drink water.", "en"))
    assert len(pieces) == 2 and all(p.duration_s > 0.3 for p in pieces)
    whole = voice.speak("Rest today. Drink water.", "en")
    assert whole.sample_rate == pieces[0].sample_rate
    assert np.array_equal(whole.samples, np.concatenate([p.samples for p in pieces]))
    assert np.array_equal(whole.samples, voice.speak("Rest today. Drink water.", "en").samples)
    spanish = voice.speak("Descanse hoy.", "es")
    assert spanish.sample_rate == 16_000 and spanish.duration_s > 0.5


def test_bad_text_and_speed_are_typed_errors():
    with pytest.raises(EmptyInputError):
        voice.speak("   ", "en")
    with pytest.raises(InputTooLargeError):
        voice.speak("a" * 6000, "en")
    with pytest.raises(InputError, match="Speed must be between"):
        voice.speak("Hello.", "en", speed=3.0)


def test_wav_and_pcm_bytes():
    import io
    import wave

    clip = voice.speak("Hello.", "es")
    with wave.open(io.BytesIO(voice.wav_bytes(clip))) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16_000, 1, 2)
        assert w.getnframes() == len(clip.samples)
    assert len(voice.pcm16(clip)) == 2 * len(clip.samples)
