"""``medany extract NOTES_DIR --out table.parquet``: the findings of every note in a folder, as one Parquet table.

Each note (:mod:`.reading`) becomes rows (:mod:`.findings`). Notes are read in batches,
and each batch is written as one part file in ``<out>.parts/`` the moment it is done,
atomically (a temporary file, flushed, then renamed), with the ids of the notes it covers
in the part's own metadata. An interrupted run therefore leaves only whole parts; the next
run with the same ``--out`` skips every note a part covers, and each run ends by writing
``out`` (atomically too) as the union of all parts. A note added to the folder later is
read by the next run; a note already covered is not read again (``--restart`` starts over).

Files that are not notes MedAny can read (binary, not UTF-8, over ``--max-bytes``,
unreadable) are skipped with a warning naming the file and the reason, never its content;
they are not marked done, so a fixed file is read by the next run. Nothing is written but
``out``, ``<out>.parts/`` and their temporary files, beside ``out``.

``--workers N`` reads with N processes (each with its own read-only connection to the
knowledge base); the table is the same for any N.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, MissingDataError, require
from .findings import FORMAT, Coder, note_rows, schema
from .reading import MAX_BYTES, NotReadable, note_files, read_note

CHUNK = 16
"""Notes per task handed to a worker process (small: the progress bar moves, the last task is short)."""


@dataclass
class Summary:
    """What one run did."""

    out: Path
    notes: int = 0
    """Note files in the folder."""
    before: int = 0
    """Of them, already covered by parts of an earlier run (not read again)."""
    read: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """``(note id, reason)`` of each file skipped."""
    findings: int = 0
    """Rows in the table written (all parts)."""
    seconds: float = 0.0
    """Time spent reading notes (from the first note to the last part written)."""

    @property
    def notes_per_second(self) -> float:
        return self.read / self.seconds if self.seconds else 0.0


def main(argv: list[str] | None = None) -> int:
    """``medany extract NOTES_DIR --out table.parquet``: the command line of :func:`extract_notes`."""
    from ..cli_args import run_command

    return run_command(extract_notes, argv, prog="medany extract", positional=("notes",))


def extract_notes(notes: str, out: str, workers: int = 1, batch: int = 256, knowledge: str | None = None,
                  max_bytes: int = MAX_BYTES, restart: bool = False, progress: bool = True) -> int:
    """Extract the coded findings of every note in a folder into one Parquet table, resumably.

    Problems, medications and allergies, with negation, uncertainty and codes (see :mod:`.findings`). Returns 0
    when every note was read, 1 when some files were skipped (the table holds the rest), 2 on an input problem,
    130 when interrupted (the parts written so far are kept: run again to go on).

    Args:
        notes: the folder of notes (.txt, .md, .json; searched recursively)
        out: the table to write (a .parquet file); its parts go to the folder OUT.parts beside it
        workers: processes reading notes
        batch: notes per part file (what an interruption can lose)
        knowledge: a knowledge base file other than the bundled one
        max_bytes: a note file larger than this is skipped
        restart: delete the parts of earlier runs and read every note again
        progress: a progress bar on stderr (--no-progress: none)
    """
    try:
        summary = run_extraction(notes, out, workers, batch, knowledge, max_bytes, restart, progress)
    except InputError as exc:
        print(f"medany extract: input problem: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medany extract: interrupted; the notes in finished parts are kept, run the same command again to go "
              "on", file=sys.stderr)
        return 130
    print(f"medany extract: {summary.read} notes read in {summary.seconds:.1f} s ({summary.notes_per_second:.1f} "
          f"notes/s), {summary.before} already in the table, {len(summary.skipped)} skipped; {summary.findings} "
          f"findings in {summary.out}", file=sys.stderr)
    return 1 if summary.skipped else 0


def parts_dir(out: Path) -> Path:
    """Where the parts of the table ``out`` are kept: ``<out>.parts`` beside it."""
    return out.with_name(out.name + ".parts")


def run_extraction(notes: str | Path, out: str | Path, workers: int = 1, batch: int = 256,
                   knowledge: str | Path | None = None, max_bytes: int = MAX_BYTES, restart: bool = False,
                   progress: bool = False) -> Summary:
    """Extract, resume and write the table (see the module docstring); raises :class:`InputError` subclasses."""
    pq = require("pyarrow.parquet")
    root, out = Path(notes), Path(out)
    if not root.is_dir():
        raise MissingDataError("The notes folder does not exist or is not a folder.")
    if out.is_dir() or not out.name:
        raise InputError("--out names a folder; give the table's file name (table.parquet).", code="bad_output")
    if not out.parent.is_dir():
        raise InputError("The folder that should hold --out does not exist.", code="bad_output")
    if workers < 1 or batch < 1 or max_bytes < 1:
        raise InputError("--workers, --batch and --max-bytes must be at least 1.", code="bad_option")
    kb_path = _knowledge_path(knowledge)
    parts = parts_dir(out)
    parts.mkdir(exist_ok=True)
    with _Lock(parts):
        if restart:
            for p in parts.glob("part-*.parquet"):
                p.unlink()
        done = _covered(parts, pq)
        ids = note_files(root)
        todo = [i for i in ids if i not in done]
        summary = Summary(out, notes=len(ids), before=len(ids) - len(todo))
        t0 = time.perf_counter()
        _extract(root, todo, parts, summary, workers, batch, kb_path, max_bytes, progress)
        summary.seconds = time.perf_counter() - t0
        summary.findings = _union(parts, out, pq)
    return summary


def _knowledge_path(knowledge) -> Path:
    from ..knowledge.build import knowledge_path, open_knowledge

    if knowledge is not None:
        if not Path(knowledge).is_file():
            raise MissingDataError("The knowledge base file given with --knowledge does not exist.")
        return Path(knowledge)
    open_knowledge()  # builds the bundled base when it is missing (once, minutes)
    return knowledge_path()


def _extract(root, todo, parts, summary, workers, batch, kb_path, max_bytes, progress) -> None:
    from tqdm import tqdm

    chunks = [todo[i:i + min(CHUNK, batch)] for i in range(0, len(todo), min(CHUNK, batch))]
    index = max((int(p.name[5:11]) for p in parts.glob("part-*.parquet")), default=0)
    rows, covered = [], []
    bar = tqdm(total=len(todo), unit="note", desc="extract", file=sys.stderr, disable=not progress)
    pool = None
    try:
        if workers == 1 or len(chunks) <= 1:
            _init(str(kb_path), str(root), max_bytes)
            results = map(_work, chunks)
        else:
            import concurrent.futures

            pool = concurrent.futures.ProcessPoolExecutor(workers, initializer=_init,
                                                          initargs=(str(kb_path), str(root), max_bytes))
            results = pool.map(_work, chunks)
        for chunk_rows, chunk_done, chunk_skipped in results:
            rows += chunk_rows
            covered += chunk_done
            summary.read += len(chunk_done)
            for note_id, reason in chunk_skipped:
                summary.skipped.append((note_id, reason))
                bar.write(f"medany extract: skipped {note_id}: {reason}", file=sys.stderr)
            bar.update(len(chunk_done) + len(chunk_skipped))
            if len(covered) >= batch:
                index += 1
                _write_part(parts, index, rows, covered)
                rows, covered = [], []
        if covered:
            _write_part(parts, index + 1, rows, covered)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)


_WORKER: dict = {}


def _init(kb_path: str, root: str, max_bytes: int) -> None:
    """Set up a worker (or this process): its own read-only knowledge base connection."""
    from ..knowledge.retrieve import KnowledgeBase

    _WORKER.update(coder=Coder(KnowledgeBase.open(kb_path)), root=Path(root), max_bytes=max_bytes)


def _work(note_ids: list[str]) -> tuple[list[dict], list[str], list[tuple[str, str]]]:
    """``(rows, ids of the notes read, [(id, reason)] of those skipped)`` for some notes."""
    rows, done, skipped = [], [], []
    for note_id in note_ids:
        try:
            text, patient = read_note(_WORKER["root"], note_id, _WORKER["max_bytes"])
            rows += note_rows(text, note_id, patient, _WORKER["coder"])
        except NotReadable as exc:
            skipped.append((note_id, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - one odd note must not end a run over thousands
            skipped.append((note_id, f"extraction failed ({type(exc).__name__})"))
            continue
        done.append(note_id)
    return rows, done, skipped


def _write_part(parts: Path, index: int, rows: list[dict], covered: list[str]) -> None:
    pa, pq = require("pyarrow"), require("pyarrow.parquet")
    table = pa.Table.from_pylist(rows, schema=schema())
    table = table.replace_schema_metadata({"medany.format": FORMAT, "medany.notes": json.dumps(covered)})
    final = parts / f"part-{index:06d}.parquet"
    tmp = parts / f".{final.name}.tmp"
    pq.write_table(table, tmp)
    _flush(tmp)
    os.replace(tmp, final)


def _covered(parts: Path, pq) -> set[str]:
    """The note ids the parts in ``parts`` cover; refuses parts of another table layout."""
    for tmp in parts.glob(".part-*.parquet.tmp"):  # a write that was interrupted
        tmp.unlink()
    done: set[str] = set()
    for p in sorted(parts.glob("part-*.parquet")):
        meta = pq.read_schema(p).metadata or {}
        if meta.get(b"medany.format") != FORMAT.encode():
            raise InputError(f"The parts beside --out were written by another version (layout "
                             f"{meta.get(b'medany.format', b'?').decode()}, this one writes {FORMAT}); run again "
                             "with --restart.", code="bad_output")
        done.update(json.loads(meta[b"medany.notes"]))
    return done


def _union(parts: Path, out: Path, pq) -> int:
    """Write ``out`` as the union of the parts (atomically); returns its number of rows."""
    tmp = out.with_name(f".{out.name}.tmp")
    n = 0
    target = schema().with_metadata({"medany.format": FORMAT})
    with pq.ParquetWriter(tmp, target) as writer:
        for p in sorted(parts.glob("part-*.parquet")):
            table = pq.read_table(p).replace_schema_metadata(target.metadata)
            writer.write_table(table)
            n += table.num_rows
    _flush(tmp)
    os.replace(tmp, out)
    return n


def _flush(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


class _Lock:
    """One run at a time per table: a second run on the same ``--out`` is refused, not interleaved."""

    def __init__(self, parts: Path):
        self.path = parts / ".lock"

    def __enter__(self):
        self.fh = open(self.path, "w")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise InputError("Another medany extract is writing this table; wait for it to finish.",
                             code="busy") from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
