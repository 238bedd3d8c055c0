"""What a generated sentence rests on: the evidence lines whose facts, numbers or citations it writes.

The same readings as the grounding check (:mod:`multimodal.grounding`): a
modality, body part or view the sentence names ties it to that DICOM header
field of the image that states it; a food to the classifier line that sees it;
a symptom, medicine or duration to the transcript or note that says it; a
knowledge-base id to that row; a number to the line that carries it.
"""

from __future__ import annotations

import re
from typing import Sequence

from .. import terms
from ..evidence import Evidence, durations_in, numbers_in
from ..grounding import cited_ids, says_not_a_scan
from .document import Tie

_HEADER = {"modality": "Modality", "body_part": "BodyPartExamined", "view": "ViewPosition"}
SEX_WORDS = {"F": r"\b(?:female|woman|women|girl|lady|she|her|hers)\b",
             "M": r"\b(?:male|man|men|boy|gentleman|he|him|his)\b"}
AGE = re.compile(r"\b(\d{1,3})(?:[- ](?:years?|yrs?)[- ]old|[- ]year[- ]old|\s*y/?o\b)|\baged?\s+(\d{1,3})\b",
                 re.IGNORECASE)
"""Ages as sentences write them: "45-year-old", "45 years old", "aged 45"."""
_CLAIMS = ("food", "symptom", "medicine")


def ties(sentence: str, evidence: Sequence[Evidence], images: Sequence[dict] = ()) -> list[Tie]:
    """The :class:`Tie` of every evidence fact ``sentence`` states (``images``: each image's de-identified meta,
    for the header values the DICOM lines summarise)."""
    table = terms.categories()
    named = {c: {name for _, name, _ in terms.mentions(sentence, table[c])} for c in (*_HEADER, *_CLAIMS)}
    said_numbers = numbers_in(sentence)
    cited = set(cited_ids(sentence))
    out: list[Tie] = []
    for e in evidence:
        if e.source == "dicom":
            out += _header_ties(sentence, e, named, _meta_of(e, images))
            if "photo" in e.facts.get("domain", ()) and says_not_a_scan(sentence):
                out.append(Tie("dicom", e.label, "line", e.text))
            continue
        quotes = any(n in e.numbers for n in said_numbers)
        if e.source == "knowledge":
            citation = (e.facts.get("citation") or ("line",))[0]
            if citation in cited or quotes:
                out.append(Tie("knowledge", e.label, citation, e.text))
            continue
        states = any(named[c] & set(e.facts.get(c, ())) for c in _CLAIMS)
        states = states or bool(set(durations_in(sentence)) & set(e.facts.get("duration", ())))
        states = states or ("photo" in e.facts.get("domain", ()) and says_not_a_scan(sentence))
        if states or quotes:
            out.append(Tie(e.source, e.label, "line", e.text))
    return list(dict.fromkeys(out))


def _header_ties(sentence: str, e: Evidence, named: dict, meta: dict) -> list[Tie]:
    out = []
    for category, keyword in _HEADER.items():
        stated = e.facts.get(category, ())
        hit = [n for n in named[category] if any(_same(category, n, s) for s in stated)]
        if hit:
            value = meta.get(category) or stated[0]
            out.append(Tie("dicom", e.label, keyword, str(value)))
    band = meta.get("age_band")
    ages = [int(m.group(1) or m.group(2)) for m in AGE.finditer(sentence)]
    if band and (re.search(rf"(?<![\d-]){re.escape(band)}(?![\d-])", sentence) or
                 any(in_band(age, band) for age in ages)):
        out.append(Tie("dicom", e.label, "PatientAge", f"band {band}"))
    sex = meta.get("sex")
    if sex in SEX_WORDS and re.search(SEX_WORDS[sex], sentence, re.IGNORECASE):
        out.append(Tie("dicom", e.label, "PatientSex", sex))
    return out


def _same(category: str, said: str, stated: str) -> bool:
    if category == "modality":
        return terms.same_modality(said, stated)
    if category == "body_part":
        return terms.same_body_part(said, stated)
    return said == stated


def _meta_of(e: Evidence, images: Sequence[dict]) -> dict:
    """The meta of the image an evidence line describes (``Image 2`` -> the second)."""
    m = re.fullmatch(r"Image (\d+)", e.label)
    index = int(m.group(1)) - 1 if m else -1
    return images[index] if 0 <= index < len(images) else {}


def in_band(age: int, band: str) -> bool:
    """Whether ``age`` (years) is in the decade band ``"60-69"`` / ``"90+"``."""
    low, _, high = band.rstrip("+").partition("-")
    return int(low) <= age <= (int(high) if high else 150)
