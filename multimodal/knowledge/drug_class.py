"""A drug's class as ICD-10-CM groups drugs: the poisoning code (T36-T50) whose title or inclusion term names it.

The drug dictionary behind the knowledge base carries names and ids (DrugBank,
MedlinePlus, MeSH) but no class, and no ATC table is installable here. ICD-10-CM,
which the knowledge base already holds, does group drugs: its codes "Poisoning by,
adverse effect of and underdosing of ..." (T36-T50) form a tree of drug classes, and
some of them name their drugs, in the title ("... of aspirin", T39.01) or as inclusion
terms ("... of ibuprofen" under T39.31 "propionic acid derivatives", itself under
T39.3 "other nonsteroidal anti-inflammatory drugs [NSAID]"). :func:`drug_class`
finds that code for a drug's name and returns it with its ancestry, nearest last.

Only drugs ICD-10-CM names get a class (about 25 in the April 2026 tabular list:
ibuprofen and naproxen do, diclofenac and celecoxib, under "other NSAIDs", do not),
and the classes are ICD-10-CM's: aspirin is under "salicylates" (T39.0), beside
"other NSAIDs" (T39.3), not inside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .store import norm

PREFIX = "Poisoning by, adverse effect of and underdosing of "
_DRUG_CODE = re.compile(r"T(?:3[6-9]|4\d|50)\.")
"""A code of the drug block T36-T50 (its three-character categories included: T39.)."""


@dataclass(frozen=True)
class DrugClass:
    """The ICD-10-CM class of one drug."""

    code: str
    """The code that names the drug (``"T39.31"``); its ancestors are its prefixes (``T39.3``, ``T39``)."""
    path: tuple[str, ...]
    """The class names from the most general to the code's own (``("nonopioid analgesics, antipyretics and
    antirheumatics", "other nonsteroidal anti-inflammatory drugs [NSAID]", "propionic acid derivatives")``)."""

    @property
    def name(self) -> str:
        return " > ".join(self.path)


def drug_class(kb, drug: str) -> DrugClass | None:
    """The ICD-10-CM class of the drug named ``drug`` (a generic name: "Ibuprofen"), or None when ICD-10-CM names
    no class for it."""
    rows = kb.store.query("SELECT e.id, e.code FROM alias a JOIN entity e ON e.id = a.entity "
                          "WHERE a.norm = ? AND e.source = 'icd10cm'", (norm(PREFIX + drug),))
    rows = [r for r in rows if _DRUG_CODE.match(r[1] + ".")]
    if not rows:
        return None
    entity, code = max(rows, key=lambda r: len(r[1]))  # the most specific code that names it
    hit = kb.get(f"ICD-10 {code}")
    path = []
    while hit is not None and _DRUG_CODE.match(hit.code + "."):
        path.append(_title(hit.name))
        parents = kb.related(hit, "is_a", limit=1)
        hit = parents[0] if parents else None
    return DrugClass(code, tuple(reversed(path)))


def _title(name: str) -> str:
    return name[len(PREFIX):] if name.lower().startswith(PREFIX.lower()) else name
