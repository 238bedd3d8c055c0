"""A rule-based CheXpert-style labeler: a chest X-ray report in, the 14 labels out (1, 0, -1 or blank).

    >>> label("No pneumothorax. Possible right lower lobe pneumonia.")["Pneumonia"]
    -1

Each sentence is searched for the mention phrases of :mod:`.phrases`; each
mention's value comes from the ConText rules of reports
(:data:`.phrases.RADIOLOGY`, engine :mod:`multimodal.context`): 1 asserted, 0
negated, -1 uncertain. A label's mentions are aggregated as the CheXpert labeler
does: any 1 makes it 1, else any -1 makes it -1, else 0; no mention leaves it
blank (``None``). "Heart failure" or "CHF" present or uncertain adds an uncertain
Cardiomegaly (CheXpert's exception). No Finding is 1 when no other label except
Support Devices is 1 or -1 and no abnormality outside the labels
(:data:`.phrases.OTHER_FINDINGS`) is asserted, and blank otherwise: it is never 0.

Why our own rules and not medspaCy/negspaCy: the whole algorithm is a few trigger
lists and one scope rule (:mod:`multimodal.context`, shared with the consult
notes), while spaCy would add a large dependency tree and model-loading time to a
metric that must run offline in CI; NegEx/ConText in those packages also work
on sentences the same way, so nothing is lost that the fixture measures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from .phrases import ENLARGED, LABELS, MENTIONS, OTHER_FINDINGS, RADIOLOGY, STABLE, UNMENTIONS

NEAR_WORDS = 6
"""How many words may stand between a neutral mention ("heart size") and its size word ("enlarged")."""

VALUE = {"present": 1, "negated": 0, "uncertain": -1}


def _regex(pattern: str) -> re.Pattern:
    return re.compile(rf"(?<!\w)(?:{pattern})(?!\w)", re.IGNORECASE)


_MENTIONS = {label: [(kind, _regex(p)) for kind, p in rows] for label, rows in MENTIONS.items()}
_UNMENTIONS = {label: _regex(p) for label, p in UNMENTIONS.items()}
_OTHER = _regex(OTHER_FINDINGS)
_ENLARGED = _regex(ENLARGED)
_STABLE = _regex(STABLE)
_CHF = _regex(r"(?:congestive )?heart failure|chf")
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class Mention:
    """One mention of a label in a report, and its value there."""

    label: str
    value: int
    """1 asserted, 0 negated, -1 uncertain."""
    text: str
    """The words that mention it."""
    sentence: str


def mentions(text: str) -> list[Mention]:
    """Every mention of the 13 finding labels in ``text`` (and of the abnormalities outside them, labelled
    ``"Other"``), in reading order."""
    found: list[Mention] = []
    for a, b in RADIOLOGY.sentences(text):
        sentence = text[a:b]
        spans = RADIOLOGY.triggers_in(sentence)
        for label, rows in _MENTIONS.items():
            found += _label_mentions(label, rows, sentence, spans)
        for m in _OTHER.finditer(sentence):
            value = VALUE[RADIOLOGY.assertion(sentence, m.start(), m.end(), spans)]
            found.append(Mention("Other", value, m.group(0), sentence))
    return found


def _spans(regex: re.Pattern, sentence: str) -> list[tuple[int, int]]:
    return [m.span() for m in regex.finditer(sentence)]


def _label_mentions(label: str, rows, sentence: str, spans) -> list[Mention]:
    unmentioned = _spans(_UNMENTIONS[label], sentence) if label in _UNMENTIONS else []
    matches = sorted(((m.start(), m.end(), kind) for kind, regex in rows for m in regex.finditer(sentence)),
                     key=lambda m: (-(m[1] - m[0]), m[0]))
    taken: list[tuple[int, int]] = []
    out = []
    for start, end, kind in matches:
        if any(start < e and s < end for s, e in taken + unmentioned):
            continue
        taken.append((start, end))
        assertion = RADIOLOGY.assertion(sentence, start, end, spans)
        if kind == "hedged":
            value = 0 if assertion == "negated" else -1
        elif kind == "neutral":
            value = VALUE[assertion] if assertion != "present" else _size(sentence, start, end)
            if value is None:
                continue
        else:
            value = VALUE[assertion]
        out.append((start, Mention(label, value, sentence[start:end], sentence)))
    return [m for _, m in sorted(out, key=lambda x: x[0])]


def _size(sentence: str, start: int, end: int) -> int | None:
    """A neutral mention with no trigger: 1 with a size word near it, -1 with "stable"/"borderline", else none."""
    def near(regex: re.Pattern) -> bool:
        for m in regex.finditer(sentence):
            if start <= m.start() < end:
                continue
            gap = sentence[end:m.start()] if m.start() >= end else sentence[m.end():start]
            if len(_WORDS.findall(gap)) <= NEAR_WORDS and not RADIOLOGY.ends_scope(gap):
                return True
        return False

    if near(_ENLARGED):
        return 1
    return -1 if near(_STABLE) else None


def aggregate(values: Iterable[int]) -> int | None:
    """A label's value from its mentions' values, as the CheXpert labeler does: 1 over -1 over 0; none: blank."""
    values = set(values)
    for v in (1, -1, 0):
        if v in values:
            return v
    return None


def label(text: str) -> dict[str, int | None]:
    """The 14 labels of one report: ``{label: 1 | 0 | -1 | None}`` (None: blank, not mentioned)."""
    found = mentions(text)
    by_label: dict[str, list[int]] = {}
    for m in found:
        by_label.setdefault(m.label, []).append(m.value)
        if m.label == "Edema" and m.value != 0 and _CHF.fullmatch(m.text):
            by_label.setdefault("Cardiomegaly", []).append(-1)
    labels = {name: aggregate(by_label.get(name, ())) for name in LABELS}
    abnormal = any(labels[name] in (1, -1) for name in LABELS if name not in ("No Finding", "Support Devices"))
    other = any(v in (1, -1) for v in by_label.get("Other", ()))
    labels["No Finding"] = None if abnormal or other else 1
    return labels


def label_many(texts: Iterable[str]) -> list[dict[str, int | None]]:
    """:func:`label` of each report."""
    return [label(t) for t in texts]
