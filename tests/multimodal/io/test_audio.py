"""Audio: real encoded tones in every container, mono 16 kHz out, >= 15 bad files refused fast."""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
import pytest

from multimodal.errors import CorruptInputError, EmptyInputError, InputTooLargeError, UnsupportedFormatError
from multimodal.io import SAMPLE_RATE, InputLimits, load_audio, load_media
from multimodal.io.audio import SilentAudioWarning
from tests.multimodal.io.io_helpers import assert_fails_fast, encode

# (container, codec, input rate)
FORMATS = [("wav", "pcm_s16le", 44100), ("wav", "pcm_f32le", 22050), ("flac", "flac", 48000),
           ("mp3", "libmp3lame", 44100), ("ogg", "libopus", 48000), ("ipod", "aac", 44100),
           ("webm", "libopus", 48000)]


def wav(samples: np.ndarray, rate: int = 16000, channels: int = 1) -> bytes:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    return wav_header(len(pcm), rate, channels) + pcm


def wav_header(data_size: int, rate: int = 16000, channels: int = 1, bits: int = 16) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    return (b"RIFF" + struct.pack("<I", 36 + data_size & 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
            + fmt + b"data" + struct.pack("<I", data_size))


@pytest.mark.parametrize("fmt,codec,rate", FORMATS)
def test_formats_decode_to_mono_16k(fmt, codec, rate):
    clip = load_audio(encode(fmt, codec, rate))
    assert clip.sample_rate == SAMPLE_RATE and clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert 0.95 < clip.duration_s < 1.1
    # the 440 Hz tone survives resampling: dominant FFT bin
    spectrum = np.abs(np.fft.rfft(clip.samples[:16000]))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / 16000
    assert abs(peak_hz - 440) < 5
    assert 0.4 < np.abs(clip.samples).max() < 0.6


def test_stereo_is_averaged_to_mono():
    left = np.sin(np.linspace(0, 200 * np.pi, 16000)).astype(np.float32) * 0.5
    inter = np.stack([left, -left], axis=1).reshape(-1)  # opposite channels cancel
    clip = load_audio(wav(inter, channels=2))
    assert np.abs(clip.samples).max() < 1e-3


def test_silence_is_valid_but_warned():
    with pytest.warns(SilentAudioWarning):
        clip = load_audio(wav(np.zeros(8000)))
    assert clip.duration_s == pytest.approx(0.5, abs=0.01)


def test_wrong_extension_is_irrelevant(tmp_path):
    path = tmp_path / "consult.wav"
    path.write_bytes(encode("mp3", "libmp3lame"))
    assert 0.95 < load_media(path).duration_s < 1.1


def test_file_object_source():
    with warnings.catch_warnings():
        warnings.simplefilter("error", SilentAudioWarning)
        clip = load_audio(io.BytesIO(encode("flac", "flac", 48000)))
    assert clip.duration_s == pytest.approx(1.0, abs=0.01)


def _with(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new):]


def _zero_channels() -> bytes:
    return _with(wav(np.zeros(1600) + 0.1), 22, struct.pack("<H", 0))


BAD_AUDIO = {
    "empty": (lambda: b"", EmptyInputError),
    "random_bytes": (lambda: np.random.default_rng(0).integers(1, 200, 4096, np.uint8).tobytes(),
                     UnsupportedFormatError),
    "text_named_audio": (lambda: b"transcript: patient reports chest pain\n" * 5, UnsupportedFormatError),
    "wav_header_truncated": (lambda: b"RIFF\x24\x00\x00\x00WAV", UnsupportedFormatError),
    "wav_riff_only": (lambda: b"RIFF\x24\x00\x00\x00WAVE", CorruptInputError),
    "wav_fmt_truncated": (lambda: wav(np.zeros(100))[:28], CorruptInputError),
    "wav_zero_channels": (_zero_channels, CorruptInputError),
    "wav_zero_rate": (lambda: _with(wav(np.zeros(100) + 0.1), 24, struct.pack("<I", 0)), CorruptInputError),
    "wav_no_data_chunk": (lambda: wav(np.zeros(100))[:36], CorruptInputError),
    "wav_absurd_declared_size": (lambda: wav_header(0xFFFFFFF0) + b"\0" * 1000, InputTooLargeError),
    "wav_declares_more_than_present": (lambda: wav_header(16000 * 2 * 10) + b"\1\0" * 16000, CorruptInputError),
    "wav_zero_samples": (lambda: wav_header(0xFFFFFFFF), EmptyInputError),
    "wav_too_long_by_header": (lambda: wav_header(16000 * 2 * 60 * 20), InputTooLargeError),
    "flac_truncated": (lambda: encode("flac", "flac")[:60], CorruptInputError),
    "mp3_garbage_after_id3": (lambda: b"ID3\x04\0\0\0\0\0\x0a" + b"\0" * 10 + b"\x13" * 2000, CorruptInputError),
    "ogg_garbage_pages": (lambda: b"OggS" + b"\x7f" * 3000, CorruptInputError),
    "m4a_truncated_header": (lambda: encode("ipod", "aac")[:40], CorruptInputError),
    "webm_header_only": (lambda: b"\x1a\x45\xdf\xa3" + b"\0" * 60, CorruptInputError),
    "image_given_as_audio": (lambda: b"\x89PNG\r\n\x1a\n" + b"\0" * 100, UnsupportedFormatError),
}


def test_enough_bad_audio():
    assert len(BAD_AUDIO) >= 15


@pytest.mark.parametrize("case", sorted(BAD_AUDIO))
def test_bad_audio_refused_fast(case):
    make, expected = BAD_AUDIO[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SilentAudioWarning)
        assert_fails_fast(expected, load_audio, make())


@pytest.mark.parametrize("fmt,codec,rate", [("flac", "flac", 48000), ("ogg", "libopus", 48000),
                                            ("mp3", "libmp3lame", 44100)])
def test_too_long_by_container_header(fmt, codec, rate):
    data = encode(fmt, codec, rate, seconds=3.0)
    err = assert_fails_fast(InputTooLargeError, load_audio, data, limits=InputLimits(max_audio_s=1.0))
    assert "minutes" in str(err)


def test_duration_guard_while_decoding():
    # a streaming WAV (size unknown) longer than the limit is stopped during decoding
    data = wav_header(0xFFFFFFFF) + (np.ones(16000 * 3, "<i2") * 1000).tobytes()
    assert_fails_fast(InputTooLargeError, load_audio, data, limits=InputLimits(max_audio_s=1.0))
