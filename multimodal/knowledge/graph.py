"""The knowledge base's edges as a graph (networkx): a concept's is-a ancestry and its disease-phenotype links.

``medany knowledge show "ICD-10 G44.209"`` prints a concept with its neighbourhood,
and callers that reason over the ontology (a phenotype's diseases, a code's
chapter) get a :class:`networkx.DiGraph` whose nodes are citations.
"""

from __future__ import annotations

import networkx as nx

RELATIONS = ("is_a", "has_phenotype")
MAX_NODES = 200
"""A neighbourhood stops growing here: "Headache" is a phenotype of hundreds of diseases."""


def neighbourhood(kb, citation: str, depth: int = 1, max_nodes: int = MAX_NODES) -> nx.DiGraph:
    """The concepts within ``depth`` edges of ``citation`` (either direction), edges labelled by relation.

    Every node carries ``name``, ``source`` and ``kind``; an edge ``u -> v`` with ``rel="is_a"`` reads
    "u is a v", with ``rel="has_phenotype"`` "disease u has phenotype v". Raises KeyError for an unknown citation.
    """
    root = kb.get(citation)
    if root is None:
        raise KeyError(f"No concept is cited as {citation!r}.")
    graph = nx.DiGraph()
    graph.add_node(root.citation, name=root.name, source=root.source, kind=root.kind)
    frontier = [root]
    for _ in range(depth):
        grown = []
        for hit in frontier:
            for rel in RELATIONS:
                for reverse in (False, True):
                    for other in kb.related(hit, rel, reverse=reverse, limit=max_nodes):
                        if other.citation not in graph:
                            if graph.number_of_nodes() >= max_nodes:
                                return graph
                            graph.add_node(other.citation, name=other.name, source=other.source, kind=other.kind)
                            grown.append(other)
                        u, v = (other.citation, hit.citation) if reverse else (hit.citation, other.citation)
                        graph.add_edge(u, v, rel=rel)
        frontier = grown
    return graph


def ancestry(kb, citation: str) -> list[str]:
    """``citation`` and its is-a ancestors up to the root, nearest first (the first parent at each step)."""
    chain, hit = [], kb.get(citation)
    while hit is not None and hit.citation not in chain:
        chain.append(hit.citation)
        parents = kb.related(hit, "is_a", limit=1)
        hit = parents[0] if parents else None
    return chain


def describe(kb, citation: str) -> list[str]:
    """Lines for ``medany knowledge show``: the concept, its ancestry, then its other neighbours by relation."""
    graph = neighbourhood(kb, citation)
    root = kb.get(citation)
    lines = [root.line(), "is a: " + (" > ".join(ancestry(kb, root.citation)[1:]) or "(a root)")]
    for rel, label, outgoing in (("is_a", "more specific", False), ("has_phenotype", "phenotypes", True),
                                 ("has_phenotype", "diseases with it", False)):
        edges = graph.out_edges(root.citation, data="rel") if outgoing else graph.in_edges(root.citation, data="rel")
        others = [v if outgoing else u for u, v, r in edges if r == rel]
        if others:
            shown = ", ".join(f"{graph.nodes[o]['name']} [{o}]" for o in sorted(others)[:10])
            lines.append(f"{label} ({len(others)}): {shown}" + (" ..." if len(others) > 10 else ""))
    return lines
