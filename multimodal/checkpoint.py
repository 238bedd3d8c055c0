"""Training checkpoints: written atomically, resumed bit-for-bit, pruned to the last N.

A checkpoint is a folder ``checkpoints/step-00000100/`` holding

- ``trainable.safetensors``: every trained tensor by its name in the model
  (projectors, LoRA adapters), the exact values the run continues from;
- ``<kind>_projector/``: the same projectors in the shareable
  :func:`projectors.save_projector` format;
- ``train_config.json`` and ``trainer_state.json`` (step, epoch, data position);
- ``training_state.pt``: optimizer and scheduler state plus every RNG state,
  saved with ``torch.save`` as tensors and plain containers only, so it loads
  with ``torch.load(weights_only=True)``.

The folder is assembled under a temporary name and renamed into place, so a
``kill -9`` at any moment leaves either the complete checkpoint or none.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .errors import ModelLoadError

_STEP_DIR = re.compile(r"step-(\d+)")


def rng_state() -> dict:
    """Every RNG this process draws from, as tensors (safe for ``weights_only`` loading)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "numpy_rest": torch.tensor([pos, has_gauss], dtype=torch.int64),
        "numpy_gauss": torch.tensor(gauss, dtype=torch.float64),
        "python": torch.tensor(py[1], dtype=torch.int64),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    pos, has_gauss = (int(v) for v in state["numpy_rest"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss,
                         float(state["numpy_gauss"])))
    random.setstate((3, tuple(int(v) for v in state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Name -> detached CPU copy of every parameter that requires grad."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def _fsync_dir(path: Path) -> None:
    for f in path.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())


def checkpoint_dirs(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints under ``output_dir``, oldest first."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.fullmatch(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def save_checkpoint(output_dir: str | Path, step: int, *, model, optimizer, scheduler, config_json: str,
                    trainer_state: dict, rng_states: list[dict], save_projectors, keep_last: int) -> Path:
    """Write checkpoint ``step`` atomically and delete all but the newest ``keep_last``.

    ``save_projectors(dir)`` writes the shareable projector folders into ``dir``;
    ``rng_states`` holds one entry per process (rank order).
    """
    root = Path(output_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    save_projectors(tmp)
    (tmp / "train_config.json").write_text(config_json)
    (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2, sort_keys=True))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_states},
               tmp / "training_state.pt")
    _fsync_dir(tmp)
    if final.exists():  # re-saving a step (e.g. final == periodic): replace it whole
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in checkpoint_dirs(output_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | Path, *, model, optimizer, scheduler) -> tuple[dict, list[dict]]:
    """Load a checkpoint into ``model``/``optimizer``/``scheduler``; returns ``(trainer_state, rng_states)``."""
    path = Path(path)
    try:
        tensors = load_file(str(path / "trainable.safetensors"))
        state = torch.load(path / "training_state.pt", map_location="cpu", weights_only=True)
        trainer_state = json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"The checkpoint '{path.name}' is incomplete or unreadable.") from exc
    params = dict(model.named_parameters())
    expected = {n for n, p in params.items() if p.requires_grad}
    if set(tensors) != expected:
        raise ModelLoadError(f"The checkpoint '{path.name}' was written for a different model setup.")
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return trainer_state, state["rng"]
