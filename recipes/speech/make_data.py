"""``python -m recipes.speech.make_data OUT``: the speech recipe's data, synthesized offline.

Writes ``OUT/clips/*.wav`` (16 kHz mono, espeak-ng), ``OUT/train.jsonl``,
``OUT/eval.jsonl`` and ``OUT/manifest.json``. Each record is LLaVA-style::

    {"audio": "clips/train-00000.wav", "transcript": "...", "fields": {"symptom": ..., "duration": ...},
     "conversations": [{"from": "human", "value": "<audio>\\nTranscribe the patient and answer briefly."},
                       {"from": "gpt", "value": "Transcript: ...\\nSymptom: ...\\nDuration: ...\\nAnswer: ..."}]}

No held-out sentence is ever spoken in training. ``eval.jsonl`` tags each
record with a ``group`` that ``medany eval`` reports separately:

- ``unseen_sentence``: held-out sentences, training voices;
- ``unseen_voice``: held-out sentences, held-out voices (accent or variant never heard).

The plan (texts, voices, rates, pitches) is a pure function of the seed and
the counts; espeak-ng's audio differs between runs by a few milliseconds of
pitch flutter, so WAV bytes are not bit-identical.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from multimodal.errors import InputError

from ..dataset import generator_main, seeded, write_manifest, write_split
from .sentences import PROMPT, Utterance, split_utterances
from .speakers import HELD_OUT_VOICES, TRAIN_VOICES, Speaker, draw_speaker

GROUPS = ("unseen_sentence", "unseen_voice")


@dataclass(frozen=True)
class Clip:
    """One planned recording: what is said, by whom, and where it goes."""

    split: str
    index: int
    utterance: Utterance
    speaker: Speaker
    group: str | None = None

    @property
    def id(self) -> str:
        return f"{self.split}-{self.index:05d}"

    @property
    def audio(self) -> str:
        return f"clips/{self.id}.wav"

    def record(self) -> dict:
        rec = {"id": self.id, "audio": self.audio, "transcript": self.utterance.text,
               "fields": self.utterance.fields, **self.speaker.as_kwargs(),
               "conversations": [{"from": "human", "value": f"<audio>\n{PROMPT}"},
                                 {"from": "gpt", "value": self.utterance.reply()}]}
        if self.group:
            rec["group"] = self.group
        return rec


def plan(n_train: int, n_eval: int, seed: int = 0) -> dict[str, list[Clip]]:
    """``{"train": [...], "eval": [...]}`` clips; eval is split evenly between :data:`GROUPS`."""
    train_pool, eval_pool = split_utterances(seed)
    if not 1 <= n_train <= len(train_pool):
        raise InputError(f"n_train must be between 1 and {len(train_pool)}.")
    if not 2 <= n_eval <= len(eval_pool):
        raise InputError(f"n_eval must be between 2 and {len(eval_pool)} (one per group at least).")
    rng = seeded(seed, "train")
    train = [Clip("train", i, u, draw_speaker(rng, TRAIN_VOICES))
             for i, u in enumerate(rng.sample(train_pool, n_train))]
    rng = seeded(seed, "eval")
    held = []
    for i, u in enumerate(rng.sample(eval_pool, n_eval)):
        group = GROUPS[i * len(GROUPS) // n_eval]
        held.append(Clip("eval", i, u, draw_speaker(rng, TRAIN_VOICES if group == "unseen_sentence"
                                                      else HELD_OUT_VOICES), group))
    return {"train": train, "eval": held}


def make_dataset(out: str | Path, n_train: int, n_eval: int, seed: int = 0, *, progress: bool = False) -> dict:
    """Synthesize every planned clip under ``out`` and write the splits; returns the manifest."""
    from multimodal.io.tts import synthesize, write_wav

    out = Path(out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    clips = plan(n_train, n_eval, seed)
    t0, done, seconds = time.perf_counter(), 0, 0.0
    total = sum(len(v) for v in clips.values())
    for split in clips.values():
        for clip in split:
            audio = synthesize(clip.utterance.text, **clip.speaker.as_kwargs())
            write_wav(audio, out / clip.audio)
            seconds += audio.duration_s
            done += 1
            if progress and (done % 50 == 0 or done == total):
                print(f"synthesized {done}/{total} clips", file=sys.stderr)
    for name, split in clips.items():
        write_split(out / f"{name}.jsonl", [c.record() for c in split])
    manifest = {
        "recipe": "speech", "seed": seed, "train": len(clips["train"]), "eval": len(clips["eval"]),
        "eval_groups": {g: sum(c.group == g for c in clips["eval"]) for g in GROUPS},
        "train_voices": list(TRAIN_VOICES), "held_out_voices": list(HELD_OUT_VOICES),
        "audio_seconds": round(seconds, 1), "generate_s": round(time.perf_counter() - t0, 1),
    }
    write_manifest(out, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """``python -m recipes.speech.make_data OUT [--n-train N] [--n-eval M] [--seed S]``."""
    return generator_main(argv, prog="python -m recipes.speech.make_data",
                          description="Synthesize the speech recipe's train/eval data offline.",
                          out_help="output folder (clips/, train.jsonl, eval.jsonl, manifest.json)",
                          make_dataset=make_dataset, n_train=160, n_eval=16)


if __name__ == "__main__":
    sys.exit(main())
