"""``python -m recipes.image.make_data OUT``: the image recipe's data, from real DICOMs, offline.

Writes ``OUT/images/*.png`` (256x256 augmented views), ``OUT/train.jsonl``,
``OUT/eval.jsonl`` and ``OUT/manifest.json``. Captions come from the
de-identified DICOM header (:mod:`multimodal.io.dicom_meta`), one field per
line so ``medany eval`` can score each one::

    {"image": "images/train-00000.png", "fields": {"modality": "CR", "body_part": "CHEST", "view": "PA"},
     "conversations": [{"from": "human", "value": "<image>\\nWhat modality, body part and view is this scan?"},
                       {"from": "gpt", "value": "Modality: CR\\nBody part: CHEST\\nView: PA"}]}

Fields a header does not record are left out of both caption and ``fields``.
Training draws a modality uniformly, then a source group, then a file, so the
28 encodings of one test pattern do not swamp the one chest film.
``eval.jsonl`` has two ``group`` tags that ``medany eval`` reports separately:

- ``unseen_scan``: pictures from held-out source groups (never trained on, in any encoding);
- ``seen_scan``: new augmentations of training pictures (an upper bound, not generalization).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from multimodal.errors import InputError

from ..dataset import generator_main, seeded, write_manifest, write_split
from .augment import view
from .scans import FIELDS, Scan, split_groups, usable_scans

PROMPT = "What modality, body part and view is this scan?"
LABELS = {"modality": "Modality", "body_part": "Body part", "view": "View"}
GROUPS = ("unseen_scan", "seen_scan")
STYLES = ("caption", "assistant")


def caption(fields: dict) -> str:
    """``Modality: CR\\nBody part: CHEST\\nView: PA`` (recorded fields only, fixed order)."""
    return "\n".join(f"{LABELS[k]}: {fields[k]}" for k in FIELDS if fields.get(k))


@dataclass(frozen=True)
class Shot:
    """One planned image: which scan, which split and group, and the seed of its augmentation."""

    split: str
    index: int
    scan: Scan
    group: str | None = None

    @property
    def id(self) -> str:
        return f"{self.split}-{self.index:05d}"

    @property
    def image(self) -> str:
        return f"images/{self.id}.png"

    def record(self, how: dict | None = None) -> dict:
        rec = {"id": self.id, "image": self.image, "fields": dict(self.scan.fields), "source": self.scan.name,
               "source_group": self.scan.group,
               "conversations": [{"from": "human", "value": f"<image>\n{PROMPT}"},
                                 {"from": "gpt", "value": caption(self.scan.fields)}]}
        if self.group:
            rec["group"] = self.group
        if how:
            rec["augment"] = how
        return rec


def _draw(scans: list[Scan], rng) -> Scan:
    """A modality uniformly, then one of its source groups, then one of that group's files."""
    modality = rng.choice(sorted({s.fields["modality"] for s in scans}))
    groups = sorted({s.group for s in scans if s.fields["modality"] == modality})
    group = rng.choice(groups)
    return rng.choice([s for s in scans if s.group == group])


def plan(n_train: int, n_eval: int, seed: int = 0) -> dict[str, list[Shot]]:
    """``{"train": [...], "eval": [...]}`` shots; eval is split evenly between :data:`GROUPS`."""
    if n_train < 1 or n_eval < 2:
        raise InputError("Ask for at least 1 training and 2 held-out images.")
    train_scans, held_scans = split_groups(usable_scans(), seed)
    if not held_scans:
        raise InputError("No source group could be held out: too few usable DICOMs were found.")
    rng = seeded(seed, "train")
    train = [Shot("train", i, _draw(train_scans, rng)) for i in range(n_train)]
    rng = seeded(seed, "eval")
    held = []
    for i in range(n_eval):
        group = GROUPS[i * len(GROUPS) // n_eval]
        held.append(Shot("eval", i, _draw(held_scans if group == "unseen_scan" else train_scans, rng), group))
    return {"train": train, "eval": held}


def make_dataset(out: str | Path, n_train: int, n_eval: int, seed: int = 0, *, progress: bool = False,
                 style: str = "caption", assistant=None, llm: str = "embedded-small",
                 backend: str = "transformers") -> dict:
    """Render every planned shot under ``out`` and write the splits; returns the manifest.

    ``style`` is ``caption`` (one fixed question, ``Field: value`` lines: stage-1
    alignment) or ``assistant`` (:mod:`recipes.image.assistant_format`: the
    pipeline's own prompt, several questions, sentence answers; ``assistant``
    is the stack that describes the photos and answers the open questions,
    default the stack of ``llm``, the LLM the projector is trained for).
    """
    from PIL import Image

    if style not in STYLES:
        raise InputError(f"Unknown record style '{style}' (choose from {', '.join(STYLES)}).")
    if style == "assistant":
        from .assistant_format import AssistantFormat

        to_record = AssistantFormat(seeded(seed, "form"), assistant, llm=llm, backend=backend).to_record
    else:
        def to_record(shot, how, png):
            return shot.record(how)
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    shots = plan(n_train, n_eval, seed)
    t0, done, total = time.perf_counter(), 0, sum(len(v) for v in shots.values())
    records: dict[str, list[dict]] = {}
    for name, split in shots.items():
        records[name] = []
        for shot in split:
            pixels, how = view(shot.scan.path, shot.scan.window, seeded(seed, shot.id))  # [S, S, 3]
            Image.fromarray(pixels).save(out / shot.image)
            records[name].append(to_record(shot, how, out / shot.image))
            done += 1
            if progress and (done % 50 == 0 or done == total):
                print(f"rendered {done}/{total} images", file=sys.stderr)
    for name, recs in records.items():
        write_split(out / f"{name}.jsonl", recs)
    train_scans, held_scans = split_groups(usable_scans(), seed)
    manifest = {
        "recipe": "image", "style": style, "seed": seed,
        **({"llm": llm, "backend": backend} if style == "assistant" else {}), "train": n_train, "eval": n_eval,
        "eval_groups": {g: sum(s.group == g for s in shots["eval"]) for g in GROUPS},
        "usable_dicoms": len(train_scans) + len(held_scans),
        "train_source_groups": sorted({s.group for s in train_scans}),
        "held_out_source_groups": sorted({s.group for s in held_scans}),
        "generate_s": round(time.perf_counter() - t0, 1),
    }
    write_manifest(out, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """``python -m recipes.image.make_data OUT [--n-train N] [--n-eval M] [--seed S]``."""
    return generator_main(argv, prog="python -m recipes.image.make_data",
                          description="Build the image recipe's train/eval data from pydicom's test scans.",
                          out_help="output folder (images/, train.jsonl, eval.jsonl, manifest.json)",
                          make_dataset=make_dataset, n_train=240, n_eval=24, styles=STYLES)


if __name__ == "__main__":
    sys.exit(main())
