"""``medany knowledge``: build the knowledge base, say what is in it, or look something up."""

from __future__ import annotations

import json
import sys
from typing import Literal


def main(argv: list[str] | None = None) -> int:
    from ..cli_args import run_command

    return run_command(command, argv, prog="medany knowledge", positional=("action", "query"))


def command(action: Literal["build", "info", "search", "link", "show"], query: str = "", k: int = 5,
            path: str | None = None) -> int:
    """Build the bundled knowledge base, print its sources, search / link a text in it, or show a concept.

    Args:
        action: build (once, into the cache), info (sources, versions, licences), search (a question), link
            (the concepts a text names) or show (a concept by its citation, with its is-a ancestry and links)
        query: the question or text for search and link; the citation for show ("ICD-10 G44.209")
        k: how many rows search returns at most
        path: a knowledge base file other than the bundled one
    """
    from pathlib import Path

    from .build import build_knowledge, knowledge_path, open_knowledge

    if action == "build":
        build_knowledge(Path(path) if path else None)
        return 0
    kb = open_knowledge(Path(path) if path else None)
    if action == "info":
        manifest = {k: v for k, v in kb.store.manifest.items()}
        print(json.dumps({"path": str(path or knowledge_path()), **manifest}, indent=2))
        return 0
    if not query:
        print("medany knowledge: give a question or text to look up", file=sys.stderr)
        return 2
    if action == "show":
        from .graph import describe

        try:
            print("\n".join(describe(kb, query)))
        except KeyError as exc:
            print(f"medany knowledge: {exc.args[0]}", file=sys.stderr)
            return 1
        return 0
    hits = kb.search(query, k=k) if action == "search" else kb.link(query)
    if not hits:
        print("no match: the knowledge base has nothing that answers this")
    for hit in hits:
        print(hit.line())
    return 0
