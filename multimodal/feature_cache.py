"""Frozen-encoder feature cache: encode every media file once, train from the tokens.

In stage 1 the encoder is frozen, so its output for a file never changes; a
Whisper or EfficientNet pass costs far more than the projector step that uses
it. We store encoder tokens ``[N, D]`` (plus the count of real tokens, for
audio) in safetensors shards under ``root/<encoder>/``, keyed by the sha256
of the file's bytes, so renamed or duplicated files hit the same entry and an
edited file misses. ``index.json`` maps each key to its shard; shards and the
index are replaced atomically, so a killed build leaves a usable cache.

Letters: n files in a batch, N encoder tokens, D encoder width.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Callable, Iterable

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .paths import atomic_write_bytes, file_sha256

INDEX = "index.json"
# files -> (tokens [n, N, D], real token counts or None per file)
EncodeFn = Callable[[list[Path]], tuple[torch.Tensor, list]]



def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "encoder"


class FeatureCache:
    """Encoder tokens for media files of one encoder, keyed by file sha256.

    ``encoder`` is the registry name (plus anything else that changes the
    output, e.g. ``"medany-lite0@224"``); different encoders never share entries.
    """

    def __init__(self, root: str | Path, encoder: str, dtype: torch.dtype = torch.float32):
        self.encoder = encoder
        self.dir = Path(root) / _slug(encoder)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dtype = dtype
        self._keys: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha
        self._handles: dict[str, object] = {}
        self.entries: dict[str, dict] = self._read_index()

    def _read_index(self) -> dict:
        path = self.dir / INDEX
        if not path.is_file():
            return {}
        data = json.loads(path.read_text())
        if data.get("encoder") != self.encoder:
            return {}
        return data.get("entries", {})

    def key(self, path: str | Path) -> str:
        """The cache key of ``path``: sha256 of its bytes (memoized per size and mtime)."""
        st = os.stat(path)
        memo = (str(path), st.st_size, st.st_mtime_ns)
        if memo not in self._keys:
            self._keys[memo] = file_sha256(path)
        return self._keys[memo]

    def __contains__(self, path) -> bool:
        return self.key(path) in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, path: str | Path) -> tuple[torch.Tensor, int | None]:
        """``(tokens [N, D], real token count or None)`` for ``path``; ``KeyError`` on a miss."""
        key = self.key(path)
        entry = self.entries[key]
        shard = entry["shard"]
        if shard not in self._handles:
            self._handles[shard] = safe_open(str(self.dir / shard), framework="pt", device="cpu")
        return self._handles[shard].get_tensor(key), entry.get("valid")

    def build(self, paths: Iterable[str | Path], encode: EncodeFn, *, batch_size: int = 8,
              shard_size: int = 256, progress: Callable[[int, int], None] | None = None) -> dict:
        """Encode every file not yet cached; returns ``{"files", "hits", "computed", "seconds"}``.

        Files are encoded ``batch_size`` at a time and written in shards of up
        to ``shard_size`` entries; the index is rewritten after every shard.
        """
        t0 = time.perf_counter()
        unique: dict[str, Path] = {}
        for p in paths:
            unique.setdefault(self.key(p), Path(p))
        todo = [(k, p) for k, p in unique.items() if k not in self.entries]
        pending: dict[str, torch.Tensor] = {}
        valid: dict[str, int | None] = {}
        done = 0
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            with torch.no_grad():
                tokens, counts = encode([p for _, p in chunk])  # [n, N, D]
            for (k, _), t, v in zip(chunk, tokens, counts):
                pending[k] = t.detach().to("cpu", self.dtype).contiguous()
                valid[k] = None if v is None else int(v)
            done += len(chunk)
            if progress:
                progress(done, len(todo))
            if len(pending) >= shard_size:
                self._flush(pending, valid)
                pending, valid = {}, {}
        if pending:
            self._flush(pending, valid)
        return {"files": len(unique), "hits": len(unique) - len(todo), "computed": len(todo),
                "seconds": time.perf_counter() - t0}

    def _flush(self, tensors: dict[str, torch.Tensor], valid: dict[str, int | None]) -> None:
        shard = f"shard-{len({e['shard'] for e in self.entries.values()}):05d}-{os.getpid()}.safetensors"
        tmp = self.dir / f".{shard}.tmp"
        save_file(tensors, str(tmp), metadata={"encoder": self.encoder})
        os.replace(tmp, self.dir / shard)
        for k in tensors:
            self.entries[k] = {"shard": shard, "valid": valid[k]}
        index = {"encoder": self.encoder, "entries": self.entries}
        atomic_write_bytes(self.dir / INDEX, json.dumps(index).encode())
