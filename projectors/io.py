"""Save and load projectors as ``projector.safetensors`` + ``projector.json``.

The JSON records how to rebuild the module (registry name, dims, kwargs), which
encoder and LLM it was trained for, the data provenance and the weights'
sha256. Loading rebuilds through the registry and reads tensors with
safetensors: nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safetensors.torch import load, save
from torch import nn

from multimodal.errors import ModelLoadError
from multimodal.paths import atomic_write_bytes

from .base import Projector
from .registry import create_projector

WEIGHTS, CONFIG = "projector.safetensors", "projector.json"


def save_projector(projector: Projector, out_dir: str | Path, *, encoder: str, llm: str, **meta) -> Path:
    """Write the projector into ``out_dir`` (created); returns the directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in projector.state_dict().items()}
    weights = save(tensors)  # projectors are small: serialize once, write atomically, hash the same bytes
    atomic_write_bytes(out / WEIGHTS, weights)
    config = {
        **projector.config(),
        "encoder": encoder,
        "llm": llm,
        "sha256": hashlib.sha256(weights).hexdigest(),
        **meta,
    }
    (out / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
    return out


def load_projector(path: str | Path) -> tuple[nn.Module, dict]:
    """Load ``(projector, config)`` from a directory written by :func:`save_projector`."""
    root = Path(path)
    if not (root / CONFIG).is_file() or not (root / WEIGHTS).is_file():
        raise ModelLoadError(f"No projector found in '{root.name}' (expected {CONFIG} and {WEIGHTS}).")
    config = json.loads((root / CONFIG).read_text())
    weights = (root / WEIGHTS).read_bytes()
    if config.get("sha256") and config["sha256"] != hashlib.sha256(weights).hexdigest():
        raise ModelLoadError(f"Projector weights in '{root.name}' do not match the sha256 in {CONFIG}.")
    projector = create_projector(config["name"], config["in_dim"], config["out_dim"], **config.get("kwargs", {}))
    projector.load_state_dict(load(weights), strict=True)
    return projector, config

