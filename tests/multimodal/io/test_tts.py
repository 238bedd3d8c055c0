"""Offline speech synthesis (espeak-ng via espeakng-loader) and the resampler behind it."""

from __future__ import annotations

import threading
import wave

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")

from multimodal.errors import EmptyInputError, InputError, InputTooLargeError  # noqa: E402
from multimodal.io.tts import list_voices, resample, synthesize, write_wav  # noqa: E402
from multimodal.io.types import SAMPLE_RATE  # noqa: E402

SENTENCE = "The patient reports chest pain and shortness of breath for two days."


@pytest.fixture(scope="module")
def clip():
    return synthesize(SENTENCE)


def test_speech_is_16k_float_and_audible(clip):
    assert clip.sample_rate == SAMPLE_RATE and clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    # 12 words at 160 wpm is ~4.5 s; espeak adds little leading/trailing silence.
    assert 2.5 < clip.duration_s < 7.0
    assert np.abs(clip.samples).max() <= 1.0
    assert np.sqrt(np.mean(clip.samples**2)) > 0.02
    # Speech, not a tone: energy varies strongly between 20 ms frames.
    frames = clip.samples[: len(clip.samples) // 320 * 320].reshape(-1, 320)
    energy = np.sqrt((frames**2).mean(1))
    assert (energy < 0.01).mean() > 0.05 and (energy > 0.05).mean() > 0.3


def test_rate_and_voice_change_the_audio(clip):
    fast = synthesize(SENTENCE, rate_wpm=300)
    slow = synthesize(SENTENCE, rate_wpm=100)
    assert fast.duration_s < clip.duration_s < slow.duration_s
    gb = synthesize(SENTENCE, voice="en-gb")
    assert len(gb.samples) != len(clip.samples)
    high = synthesize(SENTENCE, pitch=90)
    n = min(len(high.samples), len(clip.samples))
    assert not np.allclose(high.samples[:n], clip.samples[:n])


def test_concurrent_calls_do_not_mix(clip):
    # espeak-ng is one global engine; interleaved calls would split or merge
    # utterances. (Outputs differ by a few ms between calls: engine state such
    # as the pitch-flutter phase carries over, so compare lengths, not samples.)
    results: list = [None] * 4

    def work(i):
        results[i] = synthesize(SENTENCE)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert abs(r.duration_s - clip.duration_s) < 0.05 * clip.duration_s
        assert abs(np.std(r.samples) - np.std(clip.samples)) < 0.1 * np.std(clip.samples)


def test_write_wav_round_trip(clip, tmp_path):
    path = write_wav(clip, tmp_path / "speech.wav")
    with wave.open(str(path), "rb") as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (1, 2, SAMPLE_RATE)
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    assert len(pcm) == len(clip.samples)
    np.testing.assert_allclose(pcm / 32767.0, clip.samples, atol=1e-4)


def test_bad_requests_raise_typed_errors():
    with pytest.raises(EmptyInputError):
        synthesize("   ")
    with pytest.raises(InputTooLargeError):
        synthesize("a" * 10_000)
    with pytest.raises(InputError):
        synthesize("hello", rate_wpm=5)
    with pytest.raises(InputError):
        synthesize("hello", pitch=150)
    with pytest.raises(InputError):
        synthesize("hello", voice="no-such-voice")
    assert synthesize("hello").duration_s > 0.2  # the engine survives bad requests


def test_list_voices_has_english():
    languages = {v["language"] for v in list_voices()}
    assert {"en-us", "en-gb"} <= languages


def test_resample_keeps_passband_and_removes_aliases():
    t_in = np.arange(22050) / 22050
    y = resample(np.sin(2 * np.pi * 1000 * t_in), 22050, 16000)
    assert len(y) == 16000
    want = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    assert np.abs(y - want)[50:-50].max() < 1e-3
    # 10 kHz is above the new Nyquist (8 kHz): it must vanish, not fold to 6 kHz.
    assert np.abs(resample(np.sin(2 * np.pi * 10000 * t_in), 22050, 16000))[50:-50].max() < 1e-2


def test_text_becomes_ipa_phonemes_clause_by_clause():
    from multimodal.io.tts import phonemize

    assert phonemize("Rest today, drink water.") == ["ɹˈɛst tədˈeɪ", "dɹˈɪŋk wˈɔːɾɚ"]
    assert phonemize("Hola.", "es") == ["ˈola"]
    with pytest.raises(InputError, match="Unknown speech voice"):
        phonemize("Hello.", "no-such-voice")
    with pytest.raises(EmptyInputError):
        phonemize("  ")
