"""The knowledge base on disk: one SQLite file with full-text search, edges and embeddings.

Tables:

- ``entity(id, source, code, name, kind, citation, detail)``: one row per concept;
- ``alias(entity, alias, norm, everyday)``: every name it goes by (``norm`` lower-cased,
  punctuation collapsed), for exact and alias matching; ``everyday`` marks the name of a
  concept that is not :attr:`~.sources.Entity.linkable` (matched only when asked for);
- ``fts``: an FTS5 index (Porter stemming) over name, aliases and detail, ranked with BM25;
- ``fuzzy``: an FTS5 trigram index over the normalised names, for misspelled words;
- ``edge(src, rel, dst)``: ``is_a`` within a source, ``has_phenotype`` from a disease;
- ``vector(entity, v)``: the name's MiniLM embedding, float16, unit norm;
- ``manifest(key, value)``: the version of the format, each source's package, version,
  licence and file hashes, the embedding model, and when it was built.

:func:`build` writes it atomically (a temp file, then a rename); :class:`Store`
reads it.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from .sources import Entity

FORMAT = 4
SCHEMA = """
CREATE TABLE entity(id INTEGER PRIMARY KEY, source TEXT NOT NULL, code TEXT NOT NULL, name TEXT NOT NULL,
                    kind TEXT NOT NULL, citation TEXT NOT NULL, detail TEXT NOT NULL);
CREATE UNIQUE INDEX entity_citation ON entity(citation);
CREATE TABLE alias(entity INTEGER NOT NULL, alias TEXT NOT NULL, norm TEXT NOT NULL, everyday INTEGER NOT NULL);
CREATE INDEX alias_norm ON alias(norm);
CREATE VIRTUAL TABLE fts USING fts5(name, aliases, detail, tokenize='porter unicode61');
CREATE VIRTUAL TABLE fuzzy USING fts5(norm, entity UNINDEXED, tokenize='trigram');
CREATE TABLE edge(src INTEGER NOT NULL, rel TEXT NOT NULL, dst INTEGER NOT NULL);
CREATE INDEX edge_src ON edge(src);
CREATE INDEX edge_dst ON edge(dst);
CREATE TABLE vector(entity INTEGER PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE manifest(key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def norm(text: str) -> str:
    """Lower case, punctuation and runs of spaces collapsed: the key of exact and alias matching."""
    return re.sub(r"[^\w]+", " ", str(text).lower()).strip()


def build(path: Path, entities: Iterable[Entity], manifest: dict, embed=None) -> Path:
    """Write the knowledge base of ``entities`` to ``path`` atomically; ``embed(texts) -> [N, D]`` fills vectors."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    try:
        db.executescript(SCHEMA)
        rows = list(entities)
        ids = _insert_entities(db, rows)
        _insert_edges(db, rows, ids)
        if embed is not None:
            _insert_vectors(db, rows, ids, embed)
        info = {**manifest, "format": FORMAT, "entities": len(rows), "built": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                          time.gmtime())}
        db.executemany("INSERT INTO manifest VALUES (?, ?)", [(k, json.dumps(v)) for k, v in info.items()])
        db.commit()
    finally:
        db.close()
    os.replace(tmp, path)
    return path


def _remove_abandoned(path: Path) -> None:
    """Delete the temporary files of builds of ``path`` whose process is gone (an interrupted build)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp*"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _insert_entities(db, rows: list[Entity]) -> dict[tuple[str, str], int]:
    ids, seen = {}, set()
    for i, e in enumerate(rows, 1):
        if e.citation in seen:
            continue
        seen.add(e.citation)
        ids[(e.source, e.code)] = ids[("cite", e.citation)] = i
        db.execute("INSERT INTO entity VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (i, e.source, e.code, e.name, e.kind, e.citation, e.detail))
        names = list(dict.fromkeys([e.name, *e.aliases] if e.linkable else e.aliases))
        everyday = [] if e.linkable or not norm(e.name) else [(i, e.name, norm(e.name), 1)]
        db.executemany("INSERT INTO alias VALUES (?, ?, ?, ?)",
                       [(i, a, norm(a), 0) for a in names if norm(a)] + everyday)
        db.executemany("INSERT INTO fuzzy(norm, entity) VALUES (?, ?)",
                       [(k, i) for k in dict.fromkeys(norm(a) for a in names) if len(k) <= 40])
        db.execute("INSERT INTO fts(rowid, name, aliases, detail) VALUES (?, ?, ?, ?)",
                   (i, e.name, " ; ".join(e.aliases), e.detail))
    return ids


def _insert_edges(db, rows: list[Entity], ids: dict) -> None:
    edges = []
    for e in rows:
        src = ids.get((e.source, e.code))
        if src is None:
            continue
        edges += [(src, "is_a", ids[(e.source, p)]) for p in e.parents if (e.source, p) in ids]
        edges += [(src, rel, ids[("cite", c)]) for rel, c in e.links if ("cite", c) in ids]
    db.executemany("INSERT INTO edge VALUES (?, ?, ?)", edges)


def _insert_vectors(db, rows: list[Entity], ids: dict, embed) -> None:
    kept = [(ids[(e.source, e.code)], e.name) for e in rows if ids.get((e.source, e.code)) is not None]
    kept = list(dict(kept).items())  # one vector per entity id
    for start in range(0, len(kept), 32768):  # big chunks: the encoder sorts each by length
        part = kept[start:start + 32768]
        vectors = embed([name for _, name in part]).astype(np.float16)  # [n, D]
        db.executemany("INSERT INTO vector VALUES (?, ?)", [(i, v.tobytes()) for (i, _), v in zip(part, vectors)])


class Store:
    """Read access to a built knowledge base (one SQLite connection per thread that asks)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        self.manifest = {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM manifest")}
        if self.manifest.get("format") != FORMAT:
            raise ValueError(f"{self.path.name} is format {self.manifest.get('format')}, expected {FORMAT}.")
        self._vectors: tuple[np.ndarray, np.ndarray] | None = None

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        return self._db.execute(sql, args).fetchall()

    def entities(self, ids: Iterable[int]) -> dict[int, dict]:
        ids = list(dict.fromkeys(int(i) for i in ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.query(f"SELECT id, source, code, name, kind, citation, detail FROM entity WHERE id IN ({marks})",
                          tuple(ids))
        return {r[0]: dict(zip(("id", "source", "code", "name", "kind", "citation", "detail"), r)) for r in rows}

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(entity ids [N], float16 unit vectors [N, D])``, loaded once (115 MB for the full base)."""
        if self._vectors is None:
            rows = self.query("SELECT entity, v FROM vector ORDER BY entity")
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            mat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float16).reshape(len(rows), -1)
            self._vectors = (ids, mat)
        return self._vectors

    def nearest(self, query: np.ndarray, k: int = 20, chunk: int = 16384) -> list[tuple[int, float]]:
        """The ``k`` entities whose vectors have the highest cosine with ``query`` ``[D]``: ``[(id, cosine)]``."""
        ids, mat = self.vectors()
        if len(ids) == 0:
            return []
        q = np.asarray(query, dtype=np.float32)
        scores = np.empty(len(ids), dtype=np.float32)
        for start in range(0, len(ids), chunk):  # float32 math a chunk at a time: no full float32 copy
            scores[start:start + chunk] = mat[start:start + chunk].astype(np.float32) @ q
        top = np.argpartition(-scores, min(k, len(ids) - 1))[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(ids[i]), float(scores[i])) for i in top]

    def close(self) -> None:
        self._db.close()
