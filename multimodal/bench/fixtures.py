"""Hand-written fixtures for every task, laid out as the real data sets publish theirs.

The real data sets are not reachable from these machines, so each task has a handful of
questions of our own (``fixtures/*.json``: readable, reviewed by hand) that
:func:`write_fixture` writes in the data set's published layout: parquet shards with
embedded images and the ``huggingface`` schema metadata ``datasets`` reads, SLAKE's JSON
rows beside ``imgs.zip``, MedQA's JSON lines. Images are rendered from the pydicom-data
scans (``sample:CT_small.dcm`` ...). ``medany bench TASK --fixture`` runs a task on its
fixture: it shows the harness works end to end, not how good a model is.

Letters: none.
"""

from __future__ import annotations

import io
import json
import zipfile
from functools import lru_cache
from pathlib import Path

from . import MMLU_MEDICAL, TaskSpec

FIXTURES = Path(__file__).parent / "fixtures"
SOURCE = {"vqa_rad": "vqa_rad", "pathvqa": "pathvqa", "slake": "slake", "medqa_4options": "medqa_4options",
          "pubmedqa": "pubmedqa"}
IMAGE_SIDE = 128
_STRING = {"dtype": "string", "_type": "Value"}


def fixture_data(spec: TaskSpec) -> dict:
    """The task's fixture source (``fixtures/<name>.json``; every MMLU task shares ``mmlu.json``)."""
    name = SOURCE.get(spec.name, "mmlu")
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def write_fixture(spec: TaskSpec, folder: str | Path) -> Path:
    """Write ``spec``'s fixture into ``folder`` in the data set's published layout; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = fixture_data(spec)
    if spec.name in ("vqa_rad", "pathvqa"):
        rows = [{"image": {"bytes": render(item["image"]), "path": f"{i}.jpg"}, "question": item["question"],
                 "answer": item["answer"]} for i, item in enumerate(data["items"])]
        features = {"image": {"_type": "Image"}, "question": _STRING, "answer": _STRING}
        _parquet(folder / "data" / f"{data['split']}-00000-of-00001.parquet", rows, features)
    elif spec.name == "slake":
        (folder / f"{data['split']}.json").write_text(json.dumps(data["items"], ensure_ascii=False, indent=1),
                                                      encoding="utf-8")
        with zipfile.ZipFile(folder / "imgs.zip", "w") as zf:
            for name, ref in sorted(data["images"].items()):
                zf.writestr(f"imgs/{name}", render(ref))
    elif spec.name == "medqa_4options":
        (folder / data["file"]).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data["items"]),
                                           encoding="utf-8")
    elif spec.name == "pubmedqa":
        _parquet(folder / data["config"] / f"{data['split']}-00000-of-00001.parquet", data["items"])
    else:
        for subject in MMLU_MEDICAL:
            rows = [{"question": r["question"], "subject": subject, "choices": r["choices"], "answer": r["answer"]}
                    for r in data["subjects"][subject]]
            features = {"question": _STRING, "subject": _STRING,
                        "choices": {"feature": _STRING, "_type": "Sequence"},
                        "answer": {"names": ["A", "B", "C", "D"], "_type": "ClassLabel"}}
            _parquet(folder / subject / f"{data['split']}-00000-of-00001.parquet", rows, features)
    return folder


@lru_cache(maxsize=None)
def render(ref: str) -> bytes:
    """A bundled scan as the JPEG bytes a VQA data set embeds (at most 128 px a side)."""
    import numpy as np
    from PIL import Image

    from ..io import load_image

    pixels = load_image(ref).pixels  # [H, W, 3] in 0..1
    picture = Image.fromarray((np.clip(pixels, 0, 1) * 255).round().astype(np.uint8))
    picture.thumbnail((IMAGE_SIDE, IMAGE_SIDE))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _parquet(path: Path, rows: list[dict], features: dict | None = None) -> None:
    """``rows`` as one parquet shard; ``features`` (the ``datasets`` schema) in the metadata, as the hub writes it."""
    from ..errors import require

    pa = require("pyarrow", "all")
    pq = require("pyarrow.parquet", "all")
    table = pa.Table.from_pylist(rows)
    if features is not None:
        table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
