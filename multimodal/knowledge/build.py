"""Building the knowledge base from its sources, once, into the cache; opening it.

``medany knowledge build`` (or the first :func:`open_knowledge`) reads every
source of :mod:`.sources`, converts the drug pickle with the restricted unpickler
of :mod:`.drug_table`, embeds every concept's name with MiniLM (about four minutes
on two CPU cores for 150,000 names) and writes ``~/.cache/medany/knowledge/
kb-<format>.sqlite`` atomically, with a manifest of every source's package,
version, licence and file hashes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..paths import cache_dir
from . import drug_table, sources
from .retrieve import KnowledgeBase
from .store import FORMAT, build

NAME = f"kb-{FORMAT}.sqlite"


def knowledge_path() -> Path:
    return cache_dir("knowledge") / NAME


def collect(progress=None) -> tuple[list[sources.Entity], dict]:
    """Every source's rows and the manifest of where they came from."""
    say = progress or (lambda msg: None)
    rows: list[sources.Entity] = []
    manifest: dict = {"sources": {}}
    icd = sources.icd10cm_source()
    rows += list(sources.icd10cm_rows(icd.files[0]))
    hpo = sources.hpo_source()
    rows += list(sources.hpo_rows(hpo.files[0]))
    rows += list(sources.disease_rows(hpo.files[1]))
    drug = sources.drug_source()
    table = drug_table.convert(drug.files[0], cache_dir("knowledge") / "drugs-2.0.9.json")
    rows += list(sources.drug_rows(table))
    usda, ifct = sources.food_sources()
    rows += list(sources.usda_rows(usda.files[0])) + list(sources.ifct_rows(ifct.files[0]))
    for src in (icd, hpo, drug, usda, ifct):
        manifest["sources"][src.name] = src.manifest()
    say(f"{len(rows)} concepts from {len(manifest['sources'])} sources")
    return rows, manifest


def build_knowledge(path: Path | None = None, embed: bool = True, progress=None) -> Path:
    """Build the knowledge base at ``path`` (default :func:`knowledge_path`); returns the path."""
    say = progress or (lambda msg: print(msg, file=sys.stderr))
    t0 = time.perf_counter()
    rows, manifest = collect(say)
    encoder = None
    if embed:
        from .embed import sentence_encoder

        encoder = sentence_encoder()
        manifest["embedding"] = encoder.name
        say("embedding every name with MiniLM (a few minutes, once)")
    out = build(path or knowledge_path(), rows, manifest, encoder.encode if encoder else None)
    if path is None:
        remove_other_formats(out.parent)
    say(f"knowledge base written in {time.perf_counter() - t0:.0f} s: {out}")
    return out


def remove_other_formats(directory: Path) -> list[Path]:
    """Delete knowledge bases of other store formats in the cache (an upgrade's leftovers, 170 MB each)."""
    stale = [p for p in directory.glob("kb-*.sqlite") if p.name != NAME]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


_OPEN: dict[Path, KnowledgeBase] = {}


def open_knowledge(path: Path | None = None, build_if_missing: bool = True) -> KnowledgeBase:
    """The knowledge base (built first when missing), opened once per process."""
    path = Path(path or knowledge_path())
    if path not in _OPEN:
        if not path.exists():
            if not build_if_missing:
                raise FileNotFoundError(f"No knowledge base at {path}; run 'medany knowledge build'.")
            build_knowledge(path)
        _OPEN[path] = KnowledgeBase.open(path)
    return _OPEN[path]
