"""Synthetic speakers for the speech recipe: espeak-ng voices split into seen and held-out.

A voice is an espeak-ng accent plus an optional variant (``en-us+m3``: US
English, male variant 3). Held-out voices share neither the full voice name
with training nor, for two of the three, the accent itself, so the held-out
score says whether the projector learned speech rather than one synthesizer
setting. Rate and pitch are drawn per clip from the same ranges in every split.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

TRAIN_VOICES = (
    "en-us", "en-gb", "en-us+m3", "en-us+f2", "en-gb+m1", "en-gb+f3",
    "en-us+m5", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbcwmd+m2",
)  # fmt: skip
HELD_OUT_VOICES = ("en-us+f4", "en-gb-scotland+m2", "en-029")
RATE_WPM = (130, 180)
PITCH = (30, 70)


@dataclass(frozen=True)
class Speaker:
    """How one clip is spoken: the keyword arguments of :func:`multimodal.io.tts.synthesize`."""

    voice: str
    rate_wpm: int
    pitch: int

    def as_kwargs(self) -> dict:
        return {"voice": self.voice, "rate_wpm": self.rate_wpm, "pitch": self.pitch}


def draw_speaker(rng: random.Random, voices: tuple[str, ...]) -> Speaker:
    """A voice from ``voices`` with a random speaking rate (5 wpm steps) and pitch."""
    return Speaker(rng.choice(voices), rng.randrange(RATE_WPM[0], RATE_WPM[1] + 1, 5),
                   rng.randint(PITCH[0], PITCH[1]))
