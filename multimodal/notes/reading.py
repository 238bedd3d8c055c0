"""Finding and reading note files: which files are notes, their text, and the patient they are about.

A folder of notes is every ``.txt``, ``.md`` and ``.json`` file under it (hidden files
and folders, and folders reached through links, left out), in sorted order; a note's
id is its path relative to the folder (``clinic-a/2024-03-02.txt``).

- ``.txt`` / ``.md``: UTF-8 text. The patient is named by a header line among the
  first 10: ``Patient ID: P000123`` (also ``Patient:``, ``Patient-ID:``, ``MRN:``),
  an identifier of letters, digits, ``.``, ``_`` or ``-`` (a line "Patient: Jane Doe"
  names no identifier and is not read as one).
- ``.json``: one object with the note as a ``"text"`` string and optionally
  ``"patient_id"``.

A file that is not a note MedAny can read raises :class:`NotReadable` with the reason;
no message ever quotes the note's content (notes hold patient identifiers).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

SUFFIXES = (".txt", ".md", ".json")
MAX_BYTES = 1 << 20
HEADER_LINES = 10
_PATIENT = re.compile(r"^[ \t]*(?:patient(?:[ _-]?id)?|mrn)[ \t]*[:=#][ \t]*([A-Za-z0-9][\w.-]{0,63})[ \t]*$",
                      re.IGNORECASE | re.MULTILINE)


class NotReadable(Exception):
    """A file in the notes folder that is skipped; ``str()`` is the reason (never its content)."""


def note_files(root: Path) -> list[str]:
    """The note ids (relative POSIX paths) under ``root``, sorted."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(folder).relative_to(root)
        found += [(rel / f).as_posix() for f in files if not f.startswith(".") and f.lower().endswith(SUFFIXES)]
    return sorted(found)


def read_note(root: Path, note_id: str, max_bytes: int = MAX_BYTES) -> tuple[str, str | None]:
    """``(text, patient id or None)`` of the note ``note_id`` under ``root``; raises :class:`NotReadable`."""
    path = root / note_id
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise NotReadable("not a regular file")
        if info.st_size > max_bytes:
            raise NotReadable(f"larger than the limit of {max_bytes:,} bytes ({info.st_size:,} bytes)")
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise NotReadable(f"cannot be read ({type(exc).__name__})") from None
    if len(data) > max_bytes:  # it grew since stat
        raise NotReadable(f"larger than the limit of {max_bytes:,} bytes")
    if b"\x00" in data:
        raise NotReadable("binary, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotReadable("not UTF-8 text") from None
    if note_id.lower().endswith(".json"):
        return _json_note(text)
    head = "\n".join(text.splitlines()[:HEADER_LINES])
    found = _PATIENT.search(head)
    return text, found.group(1) if found else None


def _json_note(text: str) -> tuple[str, str | None]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotReadable(f"not valid JSON (line {exc.lineno})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise NotReadable('JSON without a "text" string')
    patient = obj.get("patient_id")
    if patient is not None and not isinstance(patient, (str, int)):
        raise NotReadable('"patient_id" is neither a string nor a number')
    return obj["text"], None if patient is None else str(patient)
