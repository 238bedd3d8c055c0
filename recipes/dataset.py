"""Writing a generated split: LLaVA JSONL checked by the trainer's own reader, plus a manifest."""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from multimodal.data import load_samples
from multimodal.errors import MedAnyError
from multimodal.paths import atomic_write_bytes


def seeded(seed: int, stream: str) -> random.Random:
    """An RNG for one named stream of a generator (``"train"``, ``"eval"`` ...).

    Streams are independent, so asking for more training samples never
    changes the held-out ones.
    """
    return random.Random(f"{seed}:{stream}")


def write_split(path: str | Path, records: list[dict]) -> Path:
    """Write ``records`` as JSONL (atomically) and validate them as training data.

    Raises :class:`multimodal.data.DatasetError` when a record would be
    refused by ``medany train`` (missing media file, placeholder mismatch, ...).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    atomic_write_bytes(path, text.encode("utf-8"))
    load_samples(path)
    return path


def write_manifest(out: str | Path, info: dict) -> Path:
    """``manifest.json`` beside the splits: generator, arguments, counts, held-out design."""
    path = Path(out) / "manifest.json"
    atomic_write_bytes(path, (json.dumps(info, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return path


def generator_main(argv: list[str] | None, *, prog: str, description: str, out_help: str,
                   make_dataset, n_train: int, n_eval: int, styles: tuple[str, ...] = ()) -> int:
    """The command line shared by the recipes' ``make_data`` modules: ``OUT [--n-train N] [--n-eval M] [--seed S]``.

    ``styles`` (first is the default) adds ``--style``, ``--llm`` (the LLM an assistant-style set
    is written for) and ``--backend`` (which runs it), passed on to ``make_dataset``.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("out", help=out_help)
    parser.add_argument("--n-train", type=int, default=n_train, help="training samples")
    parser.add_argument("--n-eval", type=int, default=n_eval, help="held-out samples, half per group")
    parser.add_argument("--seed", type=int, default=0)
    if styles:
        parser.add_argument("--style", choices=styles, default=styles[0], help="record format")
        parser.add_argument("--llm", default="embedded-small", help="LLM that answers the distilled questions")
        parser.add_argument("--backend", default="transformers", choices=["transformers", "auto"],
                            help="backend of those answers: transformers (the LLM as training sees it) or auto "
                                 "(llama.cpp for GGUF LLMs: as the assistant answers, and fast enough for 1.5B)")
    args = parser.parse_args(argv)
    extra = {"style": args.style, "llm": args.llm, "backend": args.backend} if styles else {}
    try:
        manifest = make_dataset(args.out, args.n_train, args.n_eval, args.seed, progress=True, **extra)
    except MedAnyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(manifest, indent=2))
    return 0
