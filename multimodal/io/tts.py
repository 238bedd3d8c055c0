"""Offline speech synthesis with espeak-ng (bundled by the PyPI package ``espeakng-loader``).

We drive ``libespeak-ng`` through ctypes in synchronous mode: ``espeak_Synth``
returns once the whole utterance has been rendered, handing int16 buffers to
our callback on the way. espeak-ng keeps one global engine per process (voice,
rate and pitch are global state), so every call holds one lock from setting the
parameters to collecting the last sample. The engine renders at 22 050 Hz; we
resample to Whisper's 16 kHz with a windowed-sinc interpolator.

Letters: T samples.
"""

from __future__ import annotations

import ctypes
import io
import threading
import wave
from pathlib import Path

import numpy as np

from multimodal.errors import EmptyInputError, InputError, InputTooLargeError, ModelLoadError, require
from multimodal.paths import atomic_write_bytes

from .types import SAMPLE_RATE, AudioClip

MAX_TEXT_CHARS = 5000  # ~6 minutes of speech; longer requests are almost surely a mistake
RATE_RANGE = (80, 450)  # words per minute accepted by espeak-ng
PITCH_RANGE = (0, 100)

# espeak-ng API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH = 1, 2, 3
_EE_OK = 0
_PHONEMES_IPA = 0x02

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),  # priority byte + name, NUL-separated list
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class _Engine:
    """The process-wide espeak-ng instance; use only while holding ``_LOCK``."""

    def __init__(self):
        loader = require("espeakng_loader", "all")
        try:
            self.lib = ctypes.CDLL(loader.get_library_path())
        except OSError as exc:
            raise ModelLoadError("The bundled espeak-ng library could not be loaded.") from exc
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        data = loader.get_data_path().encode()
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise ModelLoadError("The espeak-ng speech engine failed to start.")
        self._chunks: list[np.ndarray] = []
        # Keep a reference: ctypes frees the trampoline if the Python object dies.
        self._callback = _SYNTH_CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, _events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = keep going

    def render(self, text: str, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
        lib = self.lib
        self._set_voice(voice)
        lib.espeak_SetParameter(_PARAM_RATE, int(rate_wpm), 0)
        lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
        lib.espeak_SetParameter(_PARAM_VOLUME, 100, 0)
        # Breath noise comes from espeak's PRNG, seeded here. Other engine state
        # (e.g. the pitch-flutter phase) carries across utterances, so repeated
        # calls differ by a few milliseconds and are not bit-identical.
        lib.espeak_ng_SetRandSeed(ctypes.c_long(0))
        raw = text.encode("utf-8") + b"\0"
        self._chunks = []
        err = lib.espeak_Synth(raw, len(raw), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        chunks, self._chunks = self._chunks, []
        if err != _EE_OK:
            raise ModelLoadError(f"espeak-ng failed to synthesize speech (error {err}).")
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(chunks)  # [T] int16

    def ipa(self, text: str, voice: str) -> list[str]:
        """``text`` as IPA phonemes, one string per clause (espeak-ng splits at clause punctuation)."""
        self._set_voice(voice)
        raw = ctypes.c_char_p(text.encode("utf-8") + b"\0")
        # The pointer walks through our buffer clause by clause and ends as NULL.
        pointer = ctypes.c_char_p(ctypes.addressof(ctypes.cast(raw, ctypes.POINTER(ctypes.c_char)).contents))
        clauses = []
        while pointer.value:
            out = self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, _PHONEMES_IPA)
            if out:
                clauses.append(out.decode("utf-8", errors="replace"))
        return clauses

    def _set_voice(self, voice: str) -> None:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK and not self._set_by_language(voice):
            raise InputError(f"Unknown speech voice {voice!r}; see list_voices().", code="unknown_voice")

    def _set_by_language(self, voice: str) -> bool:
        # By-name lookup misses some language tags (en-gb lives in voice file "en");
        # the property search matches on language, keeping a "+variant" suffix.
        lang, _, variant = voice.partition("+")
        # Exact language tags only: espeak matches prefixes ("no-such" -> Norwegian).
        if lang.lower() not in {v["language"].lower() for v in self.voices()}:
            return False
        spec = _Voice(languages=lang.encode(), name=variant.encode() or None)
        return self.lib.espeak_SetVoiceByProperties(ctypes.byref(spec)) == _EE_OK

    def voices(self) -> list[dict]:
        out = []
        table = self.lib.espeak_ListVoices(None)
        i = 0
        while table[i]:
            v = table[i].contents
            out.append({
                "name": (v.name or b"").decode(errors="replace"),
                "language": (v.languages or b"\0")[1:].decode(errors="replace"),
                "identifier": (v.identifier or b"").decode(errors="replace"),
            })  # fmt: skip
            i += 1
        return out


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def check_text(text) -> None:
    """Refuse what cannot be spoken: no text, or more than :data:`MAX_TEXT_CHARS` characters."""
    if not isinstance(text, str) or not text.strip():
        raise EmptyInputError("There is no text to speak.")
    if len(text) > MAX_TEXT_CHARS:
        raise InputTooLargeError(f"The text is too long to speak (limit {MAX_TEXT_CHARS} characters).")


def resample(x: np.ndarray, src_rate: int, dst_rate: int, half_width: int = 16) -> np.ndarray:
    """Band-limited resampling of mono ``x [T]`` (Kaiser-windowed sinc, pure function).

    Each output sample is a weighted sum of ``2 * half_width`` input samples
    around its position; the low-pass cutoff sits just below the lower Nyquist
    rate so downsampling does not alias.
    """
    x = np.asarray(x, dtype=np.float32)
    if src_rate == dst_rate or x.size == 0:
        return x.copy()
    n_out = round(x.size * dst_rate / src_rate)
    cutoff = 0.95 * min(src_rate, dst_rate) / src_rate  # in cycles per input sample * 2
    offsets = np.arange(-half_width + 1, half_width + 1)  # [K]
    padded = np.pad(x, (half_width, half_width + 1))
    out = np.empty(n_out, dtype=np.float32)
    step = 65536  # bound the [chunk, K] working set
    for start in range(0, n_out, step):
        t = np.arange(start, min(start + step, n_out)) * (src_rate / dst_rate)  # [n] input positions
        base = np.floor(t).astype(np.int64)
        idx = base[:, None] + offsets[None, :]  # [n, K]
        d = t[:, None] - idx  # [n, K] distance in input samples
        # Continuous Kaiser window (beta 8) evaluated at the fractional distances.
        window = np.i0(8.0 * np.sqrt(np.clip(1.0 - (d / half_width) ** 2, 0.0, 1.0))) / np.i0(8.0)
        w = cutoff * np.sinc(cutoff * d) * window  # [n, K]
        out[start : start + len(t)] = (padded[idx + half_width] * w).sum(axis=1)
    return out


def synthesize(text: str, *, voice: str = "en-us", rate_wpm: int = 160, pitch: int = 50) -> AudioClip:
    """Speak ``text`` offline; returns a 16 kHz mono float32 :class:`AudioClip`.

    ``voice`` is an espeak-ng voice or language name (``en-us``, ``en-gb``,
    ``fr``, variants as ``en-us+f3``); ``rate_wpm`` in words per minute
    (80-450); ``pitch`` 0-100. Thread-safe: calls are serialised.
    """
    check_text(text)
    if not RATE_RANGE[0] <= rate_wpm <= RATE_RANGE[1]:
        raise InputError(f"Speech rate must be between {RATE_RANGE[0]} and {RATE_RANGE[1]} words per minute.")
    if not PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]:
        raise InputError(f"Speech pitch must be between {PITCH_RANGE[0]} and {PITCH_RANGE[1]}.")
    with _LOCK:
        engine = _engine()
        pcm = engine.render(text, voice, rate_wpm, pitch)
        rate = engine.sample_rate
    samples = resample(pcm.astype(np.float32) / 32768.0, rate, SAMPLE_RATE)
    return AudioClip(samples=np.clip(samples, -1.0, 1.0).astype(np.float32), sample_rate=SAMPLE_RATE)


def phonemize(text: str, voice: str = "en-us") -> list[str]:
    """``text`` as espeak-ng's IPA phonemes in ``voice``, one string per clause (what Piper voices read)."""
    check_text(text)
    with _LOCK:
        return _engine().ipa(text, voice)


def list_voices() -> list[dict]:
    """Installed espeak-ng voices: ``[{"name", "language", "identifier"}]``."""
    with _LOCK:
        return _engine().voices()


def write_wav(clip: AudioClip, path) -> Path:
    """Write ``clip`` as 16-bit PCM mono WAV at its sample rate; returns the path.

    The file appears atomically, so a concurrent reader never sees half a WAV.
    """
    path = Path(path)
    pcm = (np.clip(np.asarray(clip.samples, dtype=np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(int(clip.sample_rate))
        f.writeframes(pcm.tobytes())
    atomic_write_bytes(path, buf.getvalue())
    return path
