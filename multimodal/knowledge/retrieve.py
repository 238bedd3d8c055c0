"""Finding knowledge: entity linking in text, hybrid retrieval for questions, and an explicit "no match".

- :meth:`KnowledgeBase.link` finds the concepts a text names: every run of up to
  six words is looked up among the names and aliases (exact after normalising),
  longest first, without overlaps; a word of six letters or more that matches nothing
  and is no English word may still match a whole name with one typo (two from nine
  letters on; the same first letter): character-trigram candidates, then the edit
  distance. (Aliases that are everyday English words were left out when the sources
  were read: :mod:`.english`.)
- :meth:`KnowledgeBase.search` answers a question: BM25 over the full-text index
  and cosine similarity of MiniLM embeddings each rank candidates, fused by
  reciprocal rank (k = 60, as MedRAG does); a question that names a source (ICD-10,
  HPO, a drug, a food) is searched in that source. Below a confidence floor the
  answer is an empty list: the knowledge base says it does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from .english import is_english
from .store import Store, norm

RRF_K = 60
MIN_COSINE = 0.55
"""Below this, a search hit that no word of the query names is not trusted (abstain)."""
_STOP = frozenset("a an the of and or in on at to for with by from is are was were be been it its this that these "
                  "those what which who whom how why when where do does did i you he she we they my your his her our "
                  "their me him us them not no yes can could should would will may might must have has had code "
                  "codes icd hpo drug food".split())
KIND_WORDS = {"diagnosis": ("icd", "icd-10", "icd10", "diagnosis code", "billing code"),
              "phenotype": ("hpo", "phenotype"),
              "drug": ("drug", "medicine", "medication", "drugbank"),
              "food": ("food", "nutrient", "nutrition", "calories", "kcal", "ifct", "usda")}


@dataclass(frozen=True)
class Hit:
    """One concept found: what to cite, what it is, and how it was found."""

    id: int
    citation: str
    name: str
    source: str
    kind: str
    code: str
    detail: str
    score: float
    how: str
    """``exact``, ``alias``, ``fuzzy`` (linking) or ``retrieved`` (search)."""
    mention: str = ""
    """The words of the text it was linked from."""

    def line(self) -> str:
        """``[ICD-10 G44.209] Tension-type headache, unspecified, not intractable (billable)``."""
        return f"[{self.citation}] {self.name}" + (f" ({self.detail})" if self.detail else "")

    def as_dict(self) -> dict:
        return {"citation": self.citation, "name": self.name, "source": self.source, "kind": self.kind,
                "code": self.code, "detail": self.detail, "score": round(self.score, 4), "how": self.how}


class KnowledgeBase:
    """Linking and retrieval over a built :class:`~.store.Store`; ``encoder`` embeds queries (MiniLM)."""

    def __init__(self, store: Store, encoder=None):
        self.store, self._encoder = store, encoder
        self._fuzzy_seen: dict[tuple, Hit | None] = {}

    @classmethod
    def open(cls, path: str | Path, encoder=None) -> "KnowledgeBase":
        return cls(Store(Path(path)), encoder)

    @property
    def encoder(self):
        if self._encoder is None:
            from .embed import sentence_encoder

            self._encoder = sentence_encoder()
        return self._encoder

    # -- linking -------------------------------------------------------------------------

    def link(self, text: str, kinds: set[str] | None = None, limit: int = 8, fuzzy: bool = True,
             everyday: bool = False) -> list[Hit]:
        """The concepts ``text`` names, in reading order (at most ``limit``); ``everyday``: also those named by an
        everyday word (the drug "Rice"), for a question that asks for that kind of concept."""
        words = re.findall(r"[\w'-]+", text)
        spans = [(i, j) for i in range(len(words)) for j in range(min(len(words), i + 6), i, -1)]
        keys = {norm(" ".join(words[i:j])) for i, j in spans}
        keys = {k for k in keys if k and not _trivial(k)}
        found = self._by_alias(keys, kinds, everyday)
        hits, used = [], set()
        for i, j in sorted(spans, key=lambda s: (-(s[1] - s[0]), s[0])):  # longest first
            key = norm(" ".join(words[i:j]))
            if key in found and not used & set(range(i, j)):
                used |= set(range(i, j))
                hits.append((i, replace(found[key], mention=" ".join(words[i:j]))))
        if fuzzy:
            for i, word in enumerate(words):
                if i not in used and len(word) >= 6 and not is_english(word):  # a spelled word is no typo
                    hit = self._fuzzy_once(word, kinds)
                    if hit is not None:
                        hits.append((i, hit))
        out, seen = [], set()
        for _, hit in sorted(hits, key=lambda h: h[0]):
            if hit.id not in seen:
                seen.add(hit.id)
                out.append(hit)
        return out[:limit]

    def _by_alias(self, keys: set[str], kinds, everyday: bool = False) -> dict[str, Hit]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        rows = self.store.query(
            f"SELECT a.norm, e.id, e.citation, e.name, e.source, e.kind, e.code, e.detail, a.alias = e.name "
            f"FROM alias a JOIN entity e ON e.id = a.entity WHERE a.norm IN ({marks}) AND a.everyday <= ?",
            (*keys, int(everyday)))
        best: dict[str, Hit] = {}
        for key, *fields, is_name in rows:
            if kinds and fields[4] not in kinds:
                continue
            hit = Hit(*fields, score=1.0, how="exact" if is_name else "alias")
            if key not in best or _preference(hit) < _preference(best[key]):
                best[key] = hit
        return best

    def _fuzzy_once(self, word: str, kinds) -> Hit | None:
        """:meth:`_fuzzy`, remembered: a folder of notes asks for the same unknown words again and again (a trigram
        search each costs more than linking the rest of a clause)."""
        key = (word, frozenset(kinds) if kinds else None)
        if key not in self._fuzzy_seen:
            if len(self._fuzzy_seen) >= 65536:
                self._fuzzy_seen.clear()
            self._fuzzy_seen[key] = self._fuzzy(word, kinds)
        return self._fuzzy_seen[key]

    def _fuzzy(self, word: str, kinds) -> Hit | None:
        """The concept whose name (or a word of it) is closest to ``word``: trigram candidates, then a ratio."""
        low = word.lower()
        grams = {low[i:i + 3] for i in range(len(low) - 2)}
        query = " OR ".join(f'"{g}"' for g in grams if '"' not in g)
        if not query:
            return None
        rows = self.store.query("SELECT norm, entity FROM fuzzy WHERE fuzzy MATCH ? ORDER BY bm25(fuzzy) LIMIT 60",
                                (query,))
        allowed = 1 if len(low) <= 8 else 2  # "naproxin" is one edit from naproxen; "calories" two from caries
        scored = {}
        for name, entity in rows:  # the whole name: a word inside a longer name is not a misspelling of it
            if name[:1] != low[:1] or abs(len(name) - len(low)) > allowed:
                continue  # a misspelling keeps its first letter ("drank" is not "rank")
            edits = _edit_distance(low, name, allowed)
            if edits <= allowed:
                scored[entity] = min(edits, scored.get(entity, edits))
        rows = self.store.entities(scored)
        hits = [Hit(r["id"], r["citation"], r["name"], r["source"], r["kind"], r["code"], r["detail"],
                    score=1.0 - scored[i] / len(low), how="fuzzy", mention=word)
                for i, r in rows.items() if not kinds or r["kind"] in kinds]
        return min(hits, key=lambda h: (-h.score, _preference(h)), default=None)

    # -- retrieval -----------------------------------------------------------------------

    def search(self, query: str, k: int = 5, kinds: set[str] | None = None,
               min_cosine: float = MIN_COSINE) -> list[Hit]:
        """The ``k`` concepts that best answer ``query`` (BM25 + dense, fused by rank), or ``[]`` (no match);
        a concept the query does not name must be at least ``min_cosine`` close to it in meaning."""
        kinds = kinds if kinds is not None else wanted_kinds(query)
        lexical = self._bm25(query, kinds)
        dense = self._dense(query, kinds)
        fused: dict[int, float] = {}
        for ranking in (lexical, dense):
            for rank, (entity, _) in enumerate(ranking):
                fused[entity] = fused.get(entity, 0.0) + 1.0 / (RRF_K + rank + 1)
        cosine = dict(dense)
        linked = self.link(query, kinds, limit=20, fuzzy=False, everyday=kinds is not None)
        named = {h.id for h in linked}
        for entity in named:
            fused.setdefault(entity, 0.0)
        # A question whose words all name concepts is answered by them: near neighbours would only add noise
        # ("Aleve" is naproxen, not also alendronate). Words left unnamed ("nausea with vomiting" names only
        # "vomiting") leave the remaining places to the fused ranking.
        order = sorted(named, key=lambda e: -fused[e])
        if not named or _unnamed_words(query, linked):
            order += sorted((e for e in fused if e not in named), key=lambda e: -fused[e])
        rows = self.store.entities(order[:k * 4])
        hits, shown = [], set()
        for entity in order:
            if entity not in rows or entity in shown:
                continue
            if entity not in named and cosine.get(entity, 0.0) < min_cosine:
                continue  # neither named by the query nor close in meaning: not an answer
            r = rows[entity]
            hit = Hit(r["id"], r["citation"], r["name"], r["source"], r["kind"], r["code"], r["detail"],
                      fused[entity], "retrieved")
            # An ICD-10 category is no code to bill: its most general billable codes stand in its place
            # (a model shown "J20 Acute bronchitis" cites J20).
            for h in self.billable_under(hit, k) or [hit]:
                if h.id not in shown:
                    shown.add(h.id)
                    hits.append(h)
            if len(hits) >= k:
                break
        return hits[:k]

    def billable_under(self, hit: Hit, limit: int = 5) -> list[Hit]:
        """The billable ICD-10-CM codes below a category, the most general first; ``[]`` for anything else.

        ICD-10-CM's guidelines code "unspecified" when the record lacks detail, so the
        codes whose names add the fewest details to the category's come first
        (``J20``: ``J20.9`` "Acute bronchitis, unspecified" before ``J20.0``), then code order.
        """
        if hit.source != "icd10cm" or hit.detail == "billable":
            return []
        out, level = [], [hit]
        for _ in range(3):  # a category is at most three levels above its codes
            children = [c for h in level for c in self.related(h, reverse=True, limit=100)]
            out += [replace(c, score=hit.score, how="retrieved") for c in children if c.detail == "billable"]
            level = [c for c in children if c.detail != "billable"]
            if not level:
                break
        return sorted(out, key=lambda c: _generality(c, hit))[:limit]

    def _bm25(self, query: str, kinds, n: int = 50) -> list[tuple[int, float]]:
        terms = [w for w in re.findall(r"\w+", query.lower()) if w not in _STOP and len(w) > 1]
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        rows = self.store.query("SELECT fts.rowid, bm25(fts, 10.0, 5.0, 1.0), e.kind FROM fts JOIN entity e "
                                "ON e.id = fts.rowid WHERE fts MATCH ? ORDER BY bm25(fts, 10.0, 5.0, 1.0) LIMIT ?",
                                (match, n * 4))
        return [(r[0], -r[1]) for r in rows if not kinds or r[2] in kinds][:n]

    def _dense(self, query: str, kinds, n: int = 50) -> list[tuple[int, float]]:
        if not self.store.manifest.get("embedding"):
            return []
        vector = self.encoder.encode([query])[0]
        pool = self.store.nearest(vector, k=n * 4)
        if kinds:
            allowed = {i for i, r in self.store.entities(i for i, _ in pool).items() if r["kind"] in kinds}
            pool = [(i, s) for i, s in pool if i in allowed]
        return pool[:n]

    # -- lookups ---------------------------------------------------------------------------

    def get(self, citation: str) -> Hit | None:
        """The concept cited as ``citation`` (``"ICD-10 G44.209"``), or None."""
        rows = self.store.query("SELECT id, citation, name, source, kind, code, detail FROM entity WHERE citation = ?",
                                (citation.strip().strip("[]"),))
        return Hit(*rows[0], score=1.0, how="exact") if rows else None

    def related(self, hit: Hit, rel: str = "is_a", reverse: bool = False, limit: int = 20) -> list[Hit]:
        """Concepts one ``rel`` edge away (``reverse``: pointing at ``hit``): parents, children, phenotypes."""
        a, b = ("dst", "src") if reverse else ("src", "dst")
        rows = self.store.query(f"SELECT e.id, e.citation, e.name, e.source, e.kind, e.code, e.detail FROM edge g "
                                f"JOIN entity e ON e.id = g.{b} WHERE g.{a} = ? AND g.rel = ? LIMIT ?",
                                (hit.id, rel, limit))
        return [Hit(*r, score=1.0, how="exact") for r in rows]


_SOURCE_ORDER = {"hpo": 0, "usda": 1, "ifct": 2, "drug": 3, "icd10cm": 4, "disease": 5}  # "banana": a food first


def _preference(hit: Hit) -> tuple:
    """Which of several concepts one phrase names to link: the exact name, then by source, then billable codes."""
    return (hit.how != "exact", _SOURCE_ORDER.get(hit.source, 9), hit.detail != "billable", len(hit.code))


def _generality(code: Hit, category: Hit) -> tuple:
    """Sort key: codes of the category's "unspecified" subdivision first, then those whose names add the
    fewest details to ``category``'s, then code order.

    ICD-10-CM keeps the character 9 for "unspecified" (``J20.9``, ``J01.90``, ``G43.909``); "unspecified"
    and what a name rules out ("without complications") add no detail.
    """
    said = re.sub(r"\bwithout [^,]*", "", code.name.lower())
    details = set(re.findall(r"\w+", said)) - set(re.findall(r"\w+", category.name.lower()))
    return (not code.code[len(category.code):].lstrip(".").startswith("9"),
            len(details - _STOP - {"unspecified"}), code.code)


def _unnamed_words(query: str, linked: list[Hit]) -> set[str]:
    """The query's content words that no linked concept's mention covers (its kind words aside)."""
    covered = {w for h in linked for w in re.findall(r"\w+", h.mention.lower())}
    kind_words = {w for words in KIND_WORDS.values() for phrase in words for w in re.findall(r"\w+", phrase)}
    words = {w for w in re.findall(r"\w+", query.lower()) if len(w) > 2 and not w.isdigit()}
    return words - covered - _STOP - kind_words


def _edit_distance(a: str, b: str, cap: int) -> int:
    """Optimal string alignment distance of ``a`` and ``b`` (adjacent swaps count one), or ``cap + 1`` above ``cap``."""
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if prev2 is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        if min(row) > cap:
            return cap + 1
        prev2, prev = prev, row
    return prev[-1] if prev[-1] <= cap else cap + 1


def _trivial(key: str) -> bool:
    words = key.split()
    return all(w in _STOP for w in words) or (len(words) == 1 and (len(key) < 4 or key.isdigit()))


def wanted_kinds(query: str) -> set[str] | None:
    """The kinds of concept a question asks for, when it names them (``"ICD-10 code for ..."``: diagnoses)."""
    text = query.lower()
    kinds = {kind for kind, words in KIND_WORDS.items() if any(re.search(rf"\b{re.escape(w)}\b", text) for w in words)}
    return kinds or None
