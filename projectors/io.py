"""Save and load projectors as ``projector.safetensors`` + ``projector.json``.

The JSON records how to rebuild the module (registry name, dims, kwargs), which
encoder and LLM it was trained for, the data provenance and the weights'
sha256. Loading rebuilds through the registry and reads tensors with
safetensors: nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from multimodal.errors import ModelLoadError

from .registry import create_projector

WEIGHTS, CONFIG = "projector.safetensors", "projector.json"


def save_projector(projector: nn.Module, out_dir: str | Path, *, encoder: str, llm: str, **meta) -> Path:
    """Write the projector into ``out_dir`` (created); returns the directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in projector.state_dict().items()}
    tmp = out / f".{WEIGHTS}.{os.getpid()}.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, out / WEIGHTS)
    config = {
        "name": projector.registry_name,
        "in_dim": projector.in_dim,
        "out_dim": projector.out_dim,
        "kwargs": projector.registry_kwargs,
        "encoder": encoder,
        "llm": llm,
        "sha256": _sha256(out / WEIGHTS),
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
    digest = _sha256(root / WEIGHTS)
    if config.get("sha256") and config["sha256"] != digest:
        raise ModelLoadError(f"Projector weights in '{root.name}' do not match the sha256 in {CONFIG}.")
    projector = create_projector(config["name"], config["in_dim"], config["out_dim"], **config.get("kwargs", {}))
    projector.load_state_dict(load_file(str(root / WEIGHTS)), strict=True)
    return projector, config


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
