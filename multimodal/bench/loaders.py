"""Rows of a benchmark's data set: from a local copy of its published files, or from the hub with ``datasets``.

A local folder (``--data DIR``) holds the files as the data set's hub repository publishes
them (a ``git clone`` or ``huggingface-cli download --repo-type dataset``):

- parquet shards (``data/test-00000-of-00001-<hash>.parquet``; MMLU and PubMedQA put each
  config in its own folder), images as ``{"bytes", "path"}`` structs (the ``Image`` feature);
- JSON (SLAKE's ``test.json``: one array) or JSON lines (MedQA's ``*_test.jsonl``), with
  SLAKE's images in ``imgs.zip`` (or that archive unpacked to ``imgs/``).

Each task names its file patterns (:class:`~multimodal.bench.TaskSpec.files`);
:func:`local_rows` reads the first that matches. :func:`hub_rows` asks ``datasets`` for the
same split (images come back as PIL images; :mod:`multimodal.io` takes both).

Letters: none (rows are dicts).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import DataLayoutError, MissingDataError, require


@dataclass
class Loaded:
    """A split's rows, where they came from, and (SLAKE) how to read an image named by a row."""

    rows: list[dict]
    source: str
    """``local`` or ``hub``."""
    files: list[str] = field(default_factory=list)
    """The files read, relative to the data folder (or the hub ids)."""
    image: Callable[[str], bytes] | None = None


def local_rows(root: str | Path, patterns: tuple[str, ...], split: str, config: str = "", images: str = "",
               task: str = "") -> Loaded:
    """The rows of ``split`` from the first of ``patterns`` (``{split}`` and ``{config}`` filled in) that matches
    files under ``root``; ``images`` names an image archive (``imgs.zip``, or its unpacked folder ``imgs/``)."""
    root = Path(root)
    if not root.is_dir():
        raise MissingDataError(f"The data folder for {task or 'this task'} does not exist; pass --data with a "
                               "copy of the data set's published files (docs/bench.md).")
    tried = []
    for pattern in patterns:
        glob = pattern.format(split=split, config=config)
        tried.append(glob)
        files = sorted(p for p in root.glob(glob) if p.is_file())
        if files:
            rows = [row for f in files for row in _read(f, root, task)]
            loaded = Loaded(rows, "local", [f.relative_to(root).as_posix() for f in files])
            if images:
                loaded.image = _image_reader(root, images, task)
                loaded.files.append(images)
            return loaded
    raise DataLayoutError(f"No {split} split for {task or 'this task'} in the data folder: expected "
                          f"{' or '.join(tried)} as the data set publishes them (docs/bench.md).")


def _read(path: Path, root: Path, task: str) -> list[dict]:
    name = path.relative_to(root).as_posix()
    try:
        if path.suffix == ".parquet":
            pq = require("pyarrow.parquet", "all")
            return pq.read_table(path).to_pylist()
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        data = json.loads(text)
    except (OSError, ValueError) as exc:  # pyarrow's errors are ValueErrors (ArrowInvalid)
        raise DataLayoutError(f"{name} of {task} cannot be read: {type(exc).__name__}.") from exc
    if isinstance(data, dict):  # a {"data": [...]} wrapper, as some exports write
        data = next((v for v in data.values() if isinstance(v, list)), None)
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataLayoutError(f"{name} of {task} is not a JSON array of records.")
    return data


def _image_reader(root: Path, images: str, task: str) -> Callable[[str], bytes]:
    """Bytes of the image a row names (``xmlab0/source.jpg``), from ``imgs.zip`` or the unpacked ``imgs/``."""
    archive = root / images
    folder = root / Path(images).stem
    if archive.is_file():
        zf = zipfile.ZipFile(archive)
        names = set(zf.namelist())
        prefix = Path(images).stem + "/"

        def from_zip(name: str) -> bytes:
            name = name.lstrip("/")
            for candidate in (name, prefix + name):
                if candidate in names:
                    return zf.read(candidate)
            raise DataLayoutError(f"{images} of {task} has no image {name!r}.")

        return from_zip
    if folder.is_dir():
        def from_folder(name: str) -> bytes:
            path = (folder / name.lstrip("/")).resolve()
            if folder.resolve() not in path.parents or not path.is_file():
                raise DataLayoutError(f"The {folder.name}/ folder of {task} has no image {name!r}.")
            return path.read_bytes()

        return from_folder
    raise DataLayoutError(f"{task} needs its images: {images} (or it unpacked as {folder.name}/) in the data folder.")


def hub_rows(hub_id: str, split: str, config: str | None = None, images: str = "", task: str = "") -> Loaded:
    """The rows of ``split`` through ``datasets.load_dataset`` (needs internet and ``pip install
    'medany[bench]'``); ``images`` names an archive in the same repository, fetched with ``huggingface_hub``."""
    datasets = require("datasets", "bench")
    ds = datasets.load_dataset(hub_id, config, split=split) if config else datasets.load_dataset(hub_id, split=split)
    loaded = Loaded([dict(row) for row in ds], "hub", [f"{hub_id}{'/' + config if config else ''}:{split}"])
    if images:
        hub = require("huggingface_hub", "all")
        path = Path(hub.hf_hub_download(repo_id=hub_id, filename=images, repo_type="dataset"))
        loaded.image = _image_reader(path.parent, path.name, task)
        loaded.files.append(f"{hub_id}:{images}")
    return loaded


def image_bytes(value, task: str = "") -> bytes | object:
    """A row's image as :func:`multimodal.io.load_image` takes it: the parquet ``{"bytes", "path"}`` struct's
    bytes, or the PIL image ``datasets`` decoded, unchanged."""
    if isinstance(value, dict):
        data = value.get("bytes")
        if isinstance(data, (bytes, bytearray)) and data:
            return bytes(data)
        raise DataLayoutError(f"An image of {task} carries no bytes (only a path); the published parquet embeds them.")
    if value is None:
        raise DataLayoutError(f"A row of {task} has no image.")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if hasattr(value, "mode") and hasattr(value, "size"):  # a PIL image from datasets
        return value
    raise DataLayoutError(f"An image of {task} is neither a parquet image struct nor a decoded image.")
