"""Projectors shipped inside the package, each trained by a recipe in ``recipes/``.

``projectors/weights/<name>/`` holds ``projector.safetensors`` and
``projector.json`` (as :func:`~projectors.io.save_projector` writes them) plus
``manifest.json``: the weights' sha256, the recipe and config that reproduce
them, the data's provenance, held-out metrics, and whether the stack picks the
projector by itself (``"auto": true``, set only where it measurably helps).

A stack names its projector with a spec: ``auto`` (the shipped projector
trained for this encoder and LLM, if any), ``none``, a shipped name, or a
directory.
"""

from __future__ import annotations

import json
from pathlib import Path

from multimodal.errors import ModelLoadError

from .io import CONFIG

WEIGHTS_DIR = Path(__file__).parent / "weights"
AUTO, NONE = "auto", "none"


def shipped_projectors() -> dict[str, dict]:
    """``{name: manifest}`` for every projector under :data:`WEIGHTS_DIR`."""
    found = {}
    for d in sorted(WEIGHTS_DIR.glob("*/")):
        if (d / CONFIG).is_file() and (d / "manifest.json").is_file():
            found[d.name] = json.loads((d / "manifest.json").read_text())
    return found


def resolve_projector(spec: str | None, *, encoder: str, llm: str) -> Path | None:
    """The projector directory ``spec`` names for a stack of ``encoder`` and ``llm`` (None: no projector)."""
    if spec is None or spec.strip().lower() in ("", NONE):
        return None
    available = shipped_projectors()
    if spec == AUTO:
        for name, manifest in available.items():
            if manifest.get("auto") and manifest.get("encoder") == encoder and manifest.get("llm") == llm:
                return WEIGHTS_DIR / name
        return None
    if spec in available:
        return WEIGHTS_DIR / spec
    path = Path(spec).expanduser()
    if not path.is_dir():
        names = ", ".join(available) or "none"
        raise ModelLoadError(f"Projector '{spec}' is neither a directory nor a shipped projector (shipped: {names}).")
    return path
