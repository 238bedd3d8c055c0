"""Tiny on-disk datasets and configs for the training tests (tiny-random LLM, tiny encoders)."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np

COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "white": (240, 240, 240)}


def make_image_set(root: Path, name: str = "train.jsonl") -> Path:
    """Four solid-colour PNGs, one question each; returns the JSONL path."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = []
    for colour, rgb in COLORS.items():
        arr = np.clip(np.array(rgb)[None, None] + rng.integers(0, 10, (24, 24, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(root / f"{colour}.png")
        lines.append({"id": colour, "image": f"{colour}.png", "fields": {"colour": colour},
                      "conversations": [{"from": "human", "value": "<image>\nWhat colour?"},
                                        {"from": "gpt", "value": f"Colour: {colour}"}]})
    path = root / name
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def write_tone(path: Path, freq: float, seconds: float = 0.5, rate: int = 16000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return path


def make_audio_set(root: Path, name: str = "speech.jsonl") -> Path:
    """Three short tones of different lengths with 'transcripts'; returns the JSONL path."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (freq, secs, word) in enumerate([(220, 0.4, "low"), (440, 0.7, "middle"), (880, 0.5, "high")]):
        write_tone(root / f"tone{i}.wav", freq, secs)
        lines.append({"id": f"t{i}", "audio": f"tone{i}.wav", "transcript": f"a {word} tone", "group": "g" + str(i % 2),
                      "conversations": [{"from": "human", "value": "<audio>\nTranscribe."},
                                        {"from": "gpt", "value": f"Transcript: a {word} tone"}]})
    path = root / name
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def write_config(root: Path, **overrides) -> Path:
    """A tiny stage-1 image config in ``root/config.json``; ``overrides`` replace fields."""
    cfg = {"data": "train.jsonl", "llm": "tiny-random", "image_encoder": "tiny_vit", "image_projector": "mlp2x_gelu",
           "batch_size": 2, "max_steps": 6, "lr_projector": 1e-2, "log_every": 1, "save_every": 2,
           "keep_last": 2, "output_dir": "run", "progress": False, "plot": False,
           "feature_cache_dir": "features"}
    cfg.update(overrides)
    path = root / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if ln.strip()]
