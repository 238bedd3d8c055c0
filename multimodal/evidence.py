"""Evidence: what a tool found, as the LLM reads it and as the grounding check holds the answer to it.

Every medium and every piece of context becomes one :class:`Evidence`: the
line written into the prompt, plus the facts it states by category (the DICOM
modality and body part, the symptoms, medicines and durations a transcript
names, the food a classifier sees) and the numbers an answer may quote. The
pipeline keeps the evidence of each answer (``Assistant.last_answer``), the UI
shows it beside the answer, and :mod:`multimodal.grounding` checks the answer
against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from . import terms

WORD_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())} | {"thirty": 30, "forty": 40, "fifty": 50, "a couple of": 2,
                                                    "a": 1, "an": 1}  # "several days" states no number
_NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])\d+(?:\.\d+)?(?![\w])")
_UNITS = "hour|day|week|month|year"
_DURATION = re.compile(
    rf"\b(\d+(?:\.\d+)?|{'|'.join(sorted((w for w in WORD_NUMBERS), key=len, reverse=True))})\s+({_UNITS})s?\b",
    re.IGNORECASE)


@dataclass(frozen=True)
class Evidence:
    """One fact-bearing line of a prompt."""

    source: str
    """``dicom``, ``classifier``, ``transcript``, ``nutrients``, ``attachment`` or ``note``."""
    label: str
    """What the line is called in the prompt and the UI: ``Image 1``, ``Audio 1``, ``Meal`` ..."""
    text: str
    """The line's content, exactly as the LLM reads it."""
    facts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Category (:func:`multimodal.terms.categories`, plus ``duration``) -> canonical names it states."""
    alternatives: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Names it lists as less likely (a classifier's runners-up): quoting them as the answer contradicts it."""
    numbers: tuple[float, ...] = ()
    """Numbers an answer may quote from it."""

    @property
    def line(self) -> str:
        return f"{self.label}: {self.text}"

    def as_dict(self) -> dict:
        return {"source": self.source, "label": self.label, "text": self.text,
                "facts": {k: list(v) for k, v in self.facts.items() if v}}


def numbers_in(text: str) -> tuple[float, ...]:
    """Every number written in ``text`` (``1,234.5`` -> 1234.5), in order."""
    return tuple(float(m.group().replace(",", "")) for m in _NUMBER.finditer(text))


def durations_in(text: str) -> tuple[str, ...]:
    """Durations as ``"3 day"`` / ``"2 week"`` (digits or words: "three days", "a week")."""
    out = []
    for m in _DURATION.finditer(text):
        amount = m.group(1).lower()
        value = WORD_NUMBERS.get(amount, None)
        value = float(amount) if value is None else value
        out.append(f"{value:g} {m.group(2).lower()}")
    return tuple(dict.fromkeys(out))


def stated(text: str, categories: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The canonical names of ``categories`` that ``text`` mentions."""
    table = terms.categories()
    return {c: tuple(dict.fromkeys(name for _, name, _ in terms.mentions(text, table[c]))) for c in categories}


def dicom_evidence(label: str, text: str, meta: Mapping) -> Evidence:
    """The de-identified header line of a DICOM image (``text`` as :func:`multimodal.prompt.dicom_summary`)."""
    modality = str(meta.get("modality") or "").upper()
    facts: dict[str, tuple[str, ...]] = {"modality": (modality,) if modality in terms.MODALITIES else ()}
    part = str(meta.get("body_part") or "")
    code = part.upper().replace(" ", "")
    facts["body_part"] = (code,) if code in terms.BODY_PARTS else stated(part, ["body_part"])["body_part"]
    view = terms.VIEW_CODES.get(str(meta.get("view") or "").upper())
    facts["view"] = (view,) if view else ()
    return Evidence("dicom", label, text, facts, numbers=numbers_in(text))


def classifier_evidence(label: str, text: str, labels: Sequence[tuple[str, float]]) -> Evidence:
    """A photo seen by a general classifier: its best label is the fact, clearly weaker ones are alternatives."""
    if not labels:
        return Evidence("classifier", label, text)
    top = max(p for _, p in labels)
    strong = " ; ".join(name for name, p in labels if p >= 0.5 * top)
    weak = " ; ".join(name for name, p in labels if p < 0.5 * top)
    facts = stated(strong, ["food"])
    alternatives = {k: tuple(n for n in v if n not in facts[k]) for k, v in stated(weak, ["food"]).items()}
    return Evidence("classifier", label, text, facts, alternatives, numbers_in(text))


def not_a_scan(evidence: Evidence, summary: str) -> Evidence:
    """``evidence`` of an image the domain check found to be no medical scan (:mod:`multimodal.image_domain`):
    ``summary`` (:func:`multimodal.prompt.domain_summary`) leads its line, and its facts say it is a photograph
    (modality ``XC``, external-camera photography, beside any the header gives; ``domain`` ``photo``), so an
    answer that calls it a radiograph, a CT or a scan contradicts it."""
    modality = tuple(dict.fromkeys((*evidence.facts.get("modality", ()), "XC")))
    facts = {**evidence.facts, "modality": modality, "domain": ("photo",)}
    return Evidence(evidence.source, evidence.label, f"{summary}; {evidence.text}", facts, evidence.alternatives,
                    numbers_in(summary) + evidence.numbers)


def transcript_evidence(label: str, text: str, transcript: str, language: str = "en") -> Evidence:
    """What a recording says: the symptoms, medicines and durations its transcript names (``transcript`` in
    English: Whisper's translation of speech in another ``language``, whose code the facts keep)."""
    facts = stated(transcript, ["symptom", "medicine", "body_part"])
    facts["duration"] = durations_in(transcript)
    facts["language"] = (language,)
    return Evidence("transcript", label, text, facts, numbers=numbers_in(text) + _duration_numbers(facts))


def note_evidence(label: str, text: str, source: str = "note") -> Evidence:
    """Free text the caller supplies (an edited transcript, a meal's nutrient totals, a patient's context)."""
    facts = stated(text, ["symptom", "medicine", "food", "modality", "body_part"])
    facts["duration"] = durations_in(text)
    return Evidence(source, label, text, facts, numbers=numbers_in(text) + _duration_numbers(facts))


def tool_evidence(name: str, content: str) -> Evidence:
    """What a tool returned (an OpenAI ``role: tool`` message, an agent's step), as the LLM reads it: the
    facts it states, its numbers, and the knowledge-base rows it cites (``[ICD-10 G44.209]`` or
    ``"citation": "ICD-10 G44.209"``), which an answer may then cite."""
    from .grounding import citations_in

    e = note_evidence(f"Tool {name}", content, source="tool")
    quoted = re.findall(r'"citation":\s*"([^"]{1,60})"', content)
    cited = tuple(dict.fromkeys(citations_in(content) + citations_in(" ".join(f"[{c}]" for c in quoted))))
    codes = tuple(c.rsplit(" ", 1)[-1] for c in cited)
    return Evidence("tool", e.label, e.text, {**e.facts, "citation": cited, "code": codes}, numbers=e.numbers)


def _duration_numbers(facts: Mapping[str, tuple[str, ...]]) -> tuple[float, ...]:
    return tuple(float(d.split()[0]) for d in facts.get("duration", ()))


def knowledge_evidence(hit) -> Evidence:
    """One knowledge-base row (:class:`multimodal.knowledge.Hit`): its line, its citation, its numbers.

    A row states no patient fact: its names never make a claim about what an
    attachment shows or the patient said pass the grounding check; only its
    citation and its numbers (a food's nutrients per 100 g) may be quoted.
    """
    text = hit.line()
    return Evidence("knowledge", "Knowledge", text, {"citation": (hit.citation,), "code": (hit.code,)},
                    numbers=numbers_in(hit.detail))


_KIND_NAMES = {"diagnosis": "ICD-10-CM codes", "phenotype": "HPO phenotypes", "drug": "drugs", "food": "foods"}


def knowledge_absent(kinds) -> Evidence:
    """The knowledge base's "no match" for a lookup the question asks for: the answer must not supply one."""
    searched = ", ".join(_KIND_NAMES.get(k, k) for k in sorted(kinds))
    return Evidence("knowledge", "Knowledge", f"no match: no row of MedAny's knowledge base ({searched}) answers "
                    "this question; say so and write no code or id")
