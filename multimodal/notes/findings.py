"""One note's findings as table rows: what :func:`multimodal.consult_note.extract` finds, coded, one row each.

A row is a problem (a symptom or sign the knowledge base links to HPO), a medication
(linked to the drug dictionary: DrugBank ids) or an allergy, with whether the note
negates it ("denies fever") or is unsure of it ("possible migraine"), where in the note
it is named (character offsets), and its codes:

- ``code_system`` / ``code``: the concept the finding was linked to (``HPO`` /
  ``HP:0002315``, ``DrugBank`` / ``DB01050``); empty when only the built-in word lists
  found it (no knowledge base, or a word the base does not hold);
- ``icd10_code``: for a problem, the ICD-10-CM code the same words name, the most
  general billable one under a category (``headache``: ``R51.9``);
- ``drug_class_code`` / ``drug_class``: for a medication, its class as ICD-10-CM
  groups drugs (:mod:`multimodal.knowledge.drug_class`: ``T39.31``, "nonopioid
  analgesics, antipyretics and antirheumatics > other nonsteroidal anti-inflammatory
  drugs [NSAID] > propionic acid derivatives"), when ICD-10-CM names the drug.

:data:`SCHEMA` is the table's Arrow schema; the rows carry no text of the note beyond
the words that named each finding.
"""

from __future__ import annotations

from ..consult_note import extract
from ..errors import require

FORMAT = "1"
"""The table's layout version, kept in every part file (a resumed run refuses parts of another layout)."""
COLUMNS = (("note_id", "string"), ("patient_id", "string"), ("kind", "string"), ("text", "string"),
           ("concept", "string"), ("code_system", "string"), ("code", "string"), ("icd10_code", "string"),
           ("icd10_name", "string"), ("negated", "bool_"), ("uncertain", "bool_"), ("duration", "string"),
           ("dose", "string"), ("route", "string"), ("frequency", "string"), ("drug_class_code", "string"),
           ("drug_class", "string"), ("span_start", "int32"), ("span_end", "int32"))
KINDS = ("problem", "medication", "allergy")


def schema():
    """The findings table's Arrow schema (:data:`COLUMNS`)."""
    pa = require("pyarrow")
    return pa.schema([(name, getattr(pa, kind)()) for name, kind in COLUMNS])


class Coder:
    """Codes findings with one knowledge base (or none), remembering what it looked up: notes repeat their words."""

    def __init__(self, kb=None):
        self.kb = kb
        self._icd: dict[str, tuple[str, str] | None] = {}
        self._class: dict[str, object] = {}

    def icd10(self, *names: str) -> tuple[str, str] | None:
        """``(code, name)`` of the ICD-10-CM code the first of ``names`` that names one does, or None."""
        for name in names:
            key = name.lower()
            if key not in self._icd:
                self._icd[key] = self._lookup_icd(name)
            if self._icd[key]:
                return self._icd[key]
        return None

    def _lookup_icd(self, name: str) -> tuple[str, str] | None:
        if self.kb is None or not name:
            return None
        hits = [h for h in self.kb.link(name, kinds={"diagnosis"}, fuzzy=False) if h.mention.lower() == name.lower()]
        if not hits:
            return None
        hit = (self.kb.billable_under(hits[0], 1) or hits)[0]
        return hit.code, hit.name

    def drug_class(self, drug: str):
        if self.kb is None:
            return None
        if drug not in self._class:
            from ..knowledge.drug_class import drug_class

            self._class[drug] = drug_class(self.kb, drug)
        return self._class[drug]


def split_citation(citation: str) -> tuple[str, str]:
    """``("HPO", "HP:0002315")`` of ``"HPO:0002315"``, ``("DrugBank", "DB01050")`` of ``"DrugBank DB01050"``."""
    if citation.startswith("HPO:"):
        return "HPO", "HP:" + citation[4:]
    system, _, code = citation.rpartition(" ")
    return ("ICD-10-CM" if system == "ICD-10" else system), code


def note_rows(text: str, note_id: str, patient_id: str | None, coder: Coder) -> list[dict]:
    """The rows of one note's findings (:data:`COLUMNS`), problems first, then medications, then allergies."""
    symptoms, medications, allergies = extract(text, coder.kb)
    base = {"note_id": note_id, "patient_id": patient_id}
    rows = []
    for s in symptoms:
        icd = coder.icd10(s.name, s.concept)
        rows.append(_row(base, "problem", text, s.span, s.codes, s.concept or s.name, negated=s.negated,
                         uncertain=s.uncertain, duration=s.duration, icd10_code=icd and icd[0],
                         icd10_name=icd and icd[1]))
    for m in medications:
        cls = coder.drug_class(m.name) if m.codes else None
        rows.append(_row(base, "medication", text, m.span, m.codes, m.name, negated=m.negated, dose=m.dose,
                         route=m.route, frequency=m.frequency, drug_class_code=cls and cls.code,
                         drug_class=cls and cls.name))
    for a in allergies:
        rows.append(_row(base, "allergy", text, a.span, a.codes, a.substance))
    return rows


def _row(base: dict, kind: str, text: str, span, codes, concept: str, **fields) -> dict:
    system, code = split_citation(codes[0]) if codes else (None, None)
    start, end = span if span else (None, None)
    row = dict.fromkeys(name for name, _ in COLUMNS)
    row.update(base, kind=kind, text=text[start:end] if span else None, concept=concept, code_system=system,
               code=code, negated=False, uncertain=False, span_start=start, span_end=end)
    row.update({k: v for k, v in fields.items() if v is not None})
    return row
