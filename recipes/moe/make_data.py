"""``python -m recipes.moe.make_data OUT``: the image and speech recipes' data in one training set.

Runs :mod:`recipes.image.make_data` into ``OUT/image`` and
:mod:`recipes.speech.make_data` into ``OUT/speech`` (their own held-out
designs unchanged), then writes ``OUT/train.jsonl`` (both training splits,
shuffled together, so a batch mixes scans and recordings) and ``OUT/eval.jsonl``
(both held-out splits), media paths relative to ``OUT``. ``medany eval``
then reports the image fields (modality, body part, view) and the transcript
WER in one run, per held-out group (``unseen_scan`` / ``seen_scan``,
``unseen_sentence`` / ``unseen_voice``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..dataset import generator_main, seeded, write_manifest, write_split
from ..image import make_data as image_data
from ..speech import make_data as speech_data

PARTS = {"image": (image_data, "image"), "speech": (speech_data, "audio")}
"""Sub-folder -> (generator, the record key holding its media path)."""


def _read(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def merge(out: Path, split: str) -> list[dict]:
    """Both parts' ``split`` records with media paths and ids prefixed by the part's folder."""
    records = []
    for folder, (_, key) in PARTS.items():
        for rec in _read(out / folder / f"{split}.jsonl"):
            records.append({**rec, "id": f"{folder}-{rec['id']}", key: f"{folder}/{rec[key]}"})
    return records


def make_dataset(out: str | Path, n_train: int, n_eval: int, seed: int = 0, *, progress: bool = False,
                 image_share: float = 0.6) -> dict:
    """Generate both parts under ``out`` and write the merged splits; returns the manifest.

    ``n_train`` / ``n_eval`` are totals: ``image_share`` of them are scans (the
    two recipes' own defaults are 240 + 160 training and 24 + 16 held-out samples).
    """
    out = Path(out)
    counts = {"image": (round(n_train * image_share), round(n_eval * image_share))}
    counts["speech"] = (n_train - counts["image"][0], n_eval - counts["image"][1])
    parts = {folder: gen.make_dataset(out / folder, *counts[folder], seed, progress=progress)
             for folder, (gen, _) in PARTS.items()}
    train = merge(out, "train")
    seeded(seed, "mix").shuffle(train)
    write_split(out / "train.jsonl", train)
    write_split(out / "eval.jsonl", merge(out, "eval"))
    manifest = {"recipe": "moe", "seed": seed, "train": len(train), "eval": sum(c[1] for c in counts.values()),
                "parts": parts}
    write_manifest(out, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """``python -m recipes.moe.make_data OUT [--n-train N] [--n-eval M] [--seed S]``."""
    return generator_main(argv, prog="python -m recipes.moe.make_data",
                          description="Build the image + speech training set of the MoE projector recipe.",
                          out_help="output folder (image/, speech/, train.jsonl, eval.jsonl, manifest.json)",
                          make_dataset=make_dataset, n_train=400, n_eval=40)


if __name__ == "__main__":
    sys.exit(main())
