"""ConText (Chapman et al., 2011): is a mention negated, uncertain or asserted, from trigger phrases around it.

A text is cut into sentences at :attr:`Rules.boundaries`. Inside a sentence each
:class:`Trigger` covers the mentions in its direction: ``forward`` (``"no"``
covers what follows it, "no effusion or pneumothorax"), ``backward`` (``"is not
seen"`` covers what precedes it, "pneumothorax is not seen") or ``both``
(``"versus"``). A trigger's scope stops at a termination term (``"but"``,
``"however"`` ...: "no effusion but cardiomegaly"), at the sentence's end, and
after ``window`` words when the trigger has one ("normal" covers the next two
words, "normal heart size", not a whole sentence) or at its own ``stops`` (a comma
ends the scope of "or"). Pseudo-triggers ("no change")
claim their words so that the real trigger inside them ("no") does not fire;
overlapping triggers are resolved longest first, so "not excluded" (uncertain)
wins over "not" (negated).

The assertion of a mention: uncertain when a covering trigger is uncertain and
``strong`` ("cannot exclude", "no new": uncertain even though the words negate);
otherwise negated when any covering trigger negates; otherwise uncertain when any
covering trigger is uncertain; otherwise present. That is the precedence of the
CheXpert labeler (pre-negation uncertainty, then negation, then uncertainty).

One engine serves two rule sets: :mod:`multimodal.reportmetrics.chexpert`
(radiology reports) and :mod:`multimodal.consult_note` (what a patient says).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["negated", "uncertain", "pseudo"]
Direction = Literal["forward", "backward", "both"]
Assertion = Literal["present", "negated", "uncertain"]

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Trigger:
    """A phrase (a regular expression, matched case-insensitively on word boundaries) that negates, hedges, or
    (pseudo) only looks like it does."""

    pattern: str
    kind: Kind
    direction: Direction = "forward"
    window: int | None = None
    """The most words between the trigger and a mention it covers (None: to the end of its scope)."""
    strong: bool = False
    """Uncertain even when a negation also covers the mention ("cannot exclude", "no new")."""
    stops: str | None = None
    """A regular expression that, between the trigger and a mention, ends this trigger's scope (``","``)."""


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    trigger: Trigger


@dataclass
class Rules:
    """A rule set: the triggers, the terms that end a trigger's scope, and what ends a sentence."""

    triggers: tuple[Trigger, ...]
    terminations: str = r"\b(?:but|however|although|though|whereas|except)\b"
    boundaries: str = r"[.;!?\n]+"
    _compiled: list = field(default_factory=list, init=False, repr=False)

    def __post_init__(self):
        self._compiled = [(re.compile(rf"(?<!\w)(?:{t.pattern})(?!\w)", re.IGNORECASE), t) for t in self.triggers]
        self._terminations = re.compile(self.terminations, re.IGNORECASE)
        self._boundaries = re.compile(self.boundaries)

    def sentences(self, text: str) -> list[tuple[int, int]]:
        """``[(start, end)]`` of the sentences of ``text`` (offsets into ``text``; empty ones left out)."""
        spans, at = [], 0
        for cut in self._boundaries.finditer(text):
            if text[at:cut.start()].strip():
                spans.append((at, cut.start()))
            at = cut.end()
        if text[at:].strip():
            spans.append((at, len(text)))
        return spans

    def triggers_in(self, sentence: str) -> list[Span]:
        """The triggers of ``sentence``, longest first where they overlap, in reading order."""
        found = sorted(((m.start(), m.end(), t) for regex, t in self._compiled for m in regex.finditer(sentence)),
                       key=lambda s: (-(s[1] - s[0]), s[0]))
        kept: list[Span] = []
        for start, end, trigger in found:
            # Same words, another trigger (the other direction of one phrase): both count.
            if all(end <= k.start or start >= k.end or (start, end) == (k.start, k.end) for k in kept):
                kept.append(Span(start, end, trigger))
        return sorted(kept, key=lambda s: s.start)

    def ends_scope(self, gap: str) -> bool:
        """Whether the words ``gap`` hold a termination term (no trigger reaches across one)."""
        return bool(self._terminations.search(gap))

    def covers(self, sentence: str, span: Span, start: int, end: int) -> bool:
        """Whether ``span``'s trigger covers the mention ``sentence[start:end]``."""
        t = span.trigger
        if t.direction in ("forward", "both") and span.end <= start:
            gap = sentence[span.end:start]
        elif t.direction in ("backward", "both") and span.start >= end:
            gap = sentence[end:span.start]
        else:
            return False
        if self.ends_scope(gap) or (t.stops and re.search(t.stops, gap)):
            return False
        return t.window is None or len(_WORD.findall(gap)) <= t.window

    def kinds(self, sentence: str, start: int, end: int, spans: list[Span] | None = None) -> set[str]:
        """The kinds of the triggers that cover the mention ``sentence[start:end]``: ``"negated"``,
        ``"uncertain"``, and ``"strong"`` for a strong uncertainty."""
        spans = self.triggers_in(sentence) if spans is None else spans
        covering = [s.trigger for s in spans if s.trigger.kind != "pseudo" and self.covers(sentence, s, start, end)]
        return {t.kind for t in covering} | ({"strong"} if any(t.strong for t in covering) else set())

    def assertion(self, sentence: str, start: int, end: int, spans: list[Span] | None = None) -> Assertion:
        """Whether the mention ``sentence[start:end]`` is present, negated or uncertain (module docstring)."""
        kinds = self.kinds(sentence, start, end, spans)
        if "strong" in kinds:
            return "uncertain"
        if "negated" in kinds:
            return "negated"
        return "uncertain" if "uncertain" in kinds else "present"


def words(*phrases: str) -> str:
    """One alternation of ``phrases`` (each a regular expression) for a :class:`Trigger` pattern."""
    return "|".join(phrases)
