"""Reading the reports ``medany eval-reports`` scores: JSONL rows or ReXrank JSON, paired by id.

A JSONL file has one object per line with ``"id"`` and the report under ``"report"``
(or ``"text"``, ``"prediction"``, ``"model_prediction"``). A ``.json`` file is a
ReXrank test set (references) or prediction file (:mod:`.rexrank`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ReportsFileError
from . import rexrank

TEXT_KEYS = ("report", "text", "prediction", "model_prediction")


def read_json(path: str | Path, role: str):
    """The parsed content of the JSON or JSONL file ``path`` (``role`` names it in errors: "generated")."""
    path = Path(path)
    if not path.is_file():
        raise ReportsFileError(f"The {role} reports file does not exist.", code="not_found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportsFileError(f"The {role} reports file cannot be read as UTF-8 text.", code="unreadable") from exc
    if not text.strip():
        raise ReportsFileError(f"The {role} reports file is empty.", code="empty")
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReportsFileError(f"The {role} reports file is not valid JSON (line {exc.lineno}).",
                                   code="bad_json") from exc
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ReportsFileError(f"Line {number} of the {role} reports file is not a JSON object.",
                                   code="bad_jsonl") from exc
    return rows


def reports_of(data, role: str) -> dict[str, str]:
    """``{id: report}`` from parsed JSONL rows, or from ReXrank JSON (predictions when ``role`` is "generated",
    references otherwise)."""
    if rexrank.is_rexrank(data):
        return rexrank.predictions(data) if role == "generated" else rexrank.references(data)
    if not isinstance(data, list):
        raise ReportsFileError(f"The {role} reports file is neither JSONL rows nor a ReXrank JSON object.",
                               code="bad_layout")
    out: dict[str, str] = {}
    for number, row in enumerate(data, 1):
        text = next((row.get(k) for k in TEXT_KEYS if isinstance(row, dict) and isinstance(row.get(k), str)), None)
        if not isinstance(row, dict) or "id" not in row or text is None:
            raise ReportsFileError(f"Row {number} of the {role} reports file needs an \"id\" and a \"report\" "
                                   "string.", code="bad_row")
        key = str(row["id"])
        if key in out:
            raise ReportsFileError(f"Row {number} of the {role} reports file repeats an id.", code="duplicate_id")
        out[key] = text
    return out


def paired(generated: dict[str, str], reference: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    """``(ids, generated, reference)`` in the reference's order; every id must be in both."""
    missing = [k for k in reference if k not in generated]
    extra = [k for k in generated if k not in reference]
    if missing or extra:
        raise ReportsFileError(f"The files do not pair up by id: {len(missing)} reference reports have no "
                               f"generated report and {len(extra)} generated reports have no reference.",
                               code="ids_mismatch")
    ids = list(reference)
    return ids, [generated[k] for k in ids], [reference[k] for k in ids]
