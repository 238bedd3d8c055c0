"""The grounding check: does an answer contradict the evidence it was given?

Three rules, each conservative enough to run on every answer:

1. **Numbers come from the table.** A number written with a unit (g, mg, kcal,
   %, degrees ...) must equal a number of the evidence (as written, or rounded
   to the same precision) whenever the evidence carries numbers.
2. **Claims name what the evidence names.** In a sentence that says what an
   attachment is or shows ("This film shows ...", "The photo is ...", "Your meal
   contains ...") or what the patient said ("The patient reports ..."), every
   modality, body part, view, food, symptom or medicine must be one the evidence
   states, never one it lists as less likely (a classifier's runner-up), when
   the evidence has facts of that category. Negated mentions ("not a trifle")
   do not count. Advice ("a CT may be needed") is not a claim. A finding
   ("pneumonia", "a mass", "no abnormalities") claimed about an image always
   contradicts the evidence: no embedded model reads pixels medically, so the
   evidence never states one, and "no fracture" is as much a claim as "a fracture".
3. **Durations are the patient's.** A duration in such a claim sentence must be
   one the transcript gives.
4. **Citations are the knowledge base's rows.** A citation of a known source,
   bracketed or not (``[ICD-10 G44.209]``, ``HPO:0002315``, ``HP:0002315``,
   ``DrugBank DB00788``, ``ICD-10-CM R51.9`` ...), and a bare ICD-10-CM code with its
   dot (``J95.2``) or DrugBank id (``DB01234``), must be one the evidence gives (a
   row's citation, or an id its text states): a code the LLM made up is a contradiction.
5. **A photo is no scan.** When the image-domain check found an attachment to be
   no medical scan (:func:`multimodal.evidence.not_a_scan`) and the question asks
   about a scan, or the answer calls the attachment one ("This chest film shows
   ..."), the answer must say it is not a radiograph or scan.

An answer that breaks a rule gets a :class:`Grounding` with one :class:`Issue`
per break; the pipeline regenerates it once with :meth:`Grounding.correction`
and, should the new answer still break a rule, drops the offending sentences
(:func:`without_unsupported`), saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from . import terms
from .evidence import Evidence, durations_in
from .image_domain import SCAN_WORDS, asks_about_scan
from .prompt import NOT_A_SCAN

UNIT = (r"(?:%|percent|per\s?cent|kcal|kilocalories|calories|cal|mg|milligrams?|mcg|µg|micrograms?|g|grams?|kg|"
        r"°\s?[CF]|degrees?)")
_QUOTED = re.compile(rf"(?<![\w.])(\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?)\s?{UNIT}(?![\w])", re.IGNORECASE)
_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?![.!?]*(?:\s|$)))+(?:[.!?]+(?=\s|$)|\n|$)")  # "6.2 g" stays whole
_ABOUT = (r"(?:this|the|your|that|these)\s+(?:[\w-]+\s+){0,2}?(?:image|images|photo|photograph|picture|film|study|"
          r"scan|radiograph|x-ray|xray|plate|meal|dish|food|recording|transcript|consultation|classifier|findings|"
          r"examination|exam|results?|camera)")
_SHOWS = (r"(?:is|are|was|shows?|showing|depicts?|contains?|includes?|appears?|looks?|seems?|features?|has|have|"
          r"sees?|saw|identified|recogni[sz]ed|detected|consists?|mentions?|names?|says?|indicates?|suggests?|reveals?|"
          r"demonstrates?|confirms?)")
_CLAIM = re.compile(
    rf"\b{_ABOUT}\s+(?:[\w-]+\s+){{0,3}}?{_SHOWS}\b"
    r"|^\s*(?:it|this)\s*(?:is|'s|looks|appears|seems|shows)\b"
    r"|\b(?:patient|you|they|he|she)\s+(?:[\w-]+\s+){0,2}?(?:mention\w*|report\w*|sa(?:y|ys|id)|describ\w*|complain\w*|"
    r"ha(?:s|d|ve)|experienc\w*|suffer\w*|t(?:ook|ake|aking)|been|fe(?:el|lt|eling)|is having|are having)\b",
    re.IGNORECASE)
_CONDITIONAL = re.compile(r"^\s*(?:if|when|should|unless)\b|\b(?:if|unless)\b[^,]*$", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|no|never|nor|neither|without|rather than|instead of|unlikely|rule out|ruled out|"
                       r"isn't|aren't|wasn't|doesn't|don't|didn't)\b(?:\W+\w+){0,3}\W*$", re.IGNORECASE)
_CITATION = re.compile(r"\[((?:ICD-10|HPO|OMIM|ORPHA|DECIPHER|DrugBank|MedlinePlus|MeSH|USDA FDC|IFCT)"
                       r"[: ][^\]]{1,40})\]")
# The same ids written without brackets ("ICD-10 R32.48", "HP:0002315"): the code has a digit among its first three.
_CODE_MENTION = re.compile(r"(?<![\w\[])(ICD-10-CM|ICD-10|HPO|HP|OMIM|ORPHA|DECIPHER|DrugBank|MedlinePlus|MeSH|"
                           r"USDA FDC|IFCT)(?::\s?| )([A-Za-z]{0,2}\d(?:[\w.]*\w)?)")
# Codes written bare ("the ICD-10 code J95.2", "DB01234"): an ICD-10-CM code with its dot, or a DrugBank id.
_BARE_CODE = re.compile(r"(?<![\w.\-/])(?:([A-TV-Z]\d[0-9A-Z]\.[0-9A-Z]{1,4})|(DB\d{5}))(?![\w.]\w|\w)")
_COLON_SOURCES = {"HPO", "OMIM", "ORPHA", "DECIPHER"}
_SAYS_NO_SCAN = re.compile(r"\b(?:not|isn't|aren't|no|nor|neither|rather than|instead of)\b(?:\W+\w+){0,5}?\W+"
                           r"(?:radiographs?|x-?rays?|scans?|films?|dicom|medical\s+(?:images?|scans?|stud(?:y|ies))|"
                           r"imaging)\b", re.IGNORECASE)
CHECKED = ("modality", "body_part", "view", "food", "symptom", "medicine")
IMAGE_SOURCES = ("dicom", "classifier", "attachment")


@dataclass(frozen=True)
class Issue:
    """One place where the answer contradicts its evidence."""

    kind: str
    """``number``, ``duration`` or a category (``food``, ``modality`` ...)."""
    said: str
    expected: tuple[str, ...]
    sentence: str

    def describe(self) -> str:
        if self.kind == "domain":
            called = f'called the picture "{self.said}"' if self.said else "did not say"
            return f"{called} where the evidence says it is {self.expected[0]}"
        want = ", ".join(self.expected) if self.expected else "nothing of the kind"
        return f'said "{self.said}" where the evidence gives {want}'


@dataclass
class Grounding:
    """The result of :func:`check`: the issues found and how many statements were checked."""

    issues: list[Issue] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.issues

    def correction(self) -> str:
        """A note for a second try that names each contradiction (and, for image findings, what to do instead)."""
        parts = "; ".join(i.describe() for i in self.issues)
        text = f"Correction: a draft answer {parts}."
        if any(i.kind == "domain" for i in self.issues):
            text += (" The attachment is not a radiograph or medical scan: begin the answer by saying so, and describe "
                     "nothing in it as a scan.")
        if any(i.kind == "finding" for i in self.issues):
            text += (" No one has read the image itself: do not say what it shows (no finding, not even that it "
                     "looks normal); say what the header and the other findings state, and what the clinician "
                     "should check.")
        return text + " Answer again using only the names and numbers stated in the findings above, copied exactly."

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checked": self.checked,
                "issues": [{"kind": i.kind, "said": i.said, "expected": list(i.expected)} for i in self.issues]}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def check(answer: str, evidence: Sequence[Evidence], question: str = "") -> Grounding:
    """Check ``answer`` to ``question`` against ``evidence`` (see the module docstring for the rules)."""
    result = Grounding()
    photo = any("photo" in e.facts.get("domain", ()) for e in evidence)
    allowed_numbers = [n for e in evidence for n in e.numbers]
    facts = {c: {n for e in evidence for n in e.facts.get(c, ())} for c in (*CHECKED, "duration")}
    weaker = {c: {n for e in evidence for n in e.alternatives.get(c, ())} for c in CHECKED}
    table = terms.categories()
    citations = {c for e in evidence for c in e.facts.get("citation", ())}
    for sentence in sentences(answer):
        if allowed_numbers:
            for m in _QUOTED.finditer(sentence):
                result.checked += 1
                value = float(m.group(1).replace(",", ""))
                if not any(_same_number(value, e) for e in allowed_numbers):
                    result.issues.append(Issue("number", m.group().strip(), _near(value, allowed_numbers), sentence))
        for said in cited_ids(sentence):
            result.checked += 1
            if said not in citations and not _states_id(said, evidence):
                result.issues.append(Issue("citation", said, tuple(sorted(citations)), sentence))
        if not _CLAIM.search(sentence) or _CONDITIONAL.search(sentence):
            continue
        for category in CHECKED:
            if not facts[category] and not weaker[category]:
                continue
            for start, name, phrase in terms.mentions(sentence, table[category]):
                if _NEGATION.search(sentence[:start]):
                    continue
                result.checked += 1
                if name in weaker[category] or not _stated(category, name, facts[category]):
                    result.issues.append(Issue(category, phrase, tuple(sorted(facts[category])), sentence))
        if any(e.source in IMAGE_SOURCES for e in evidence):
            for _, _, phrase in terms.mentions(sentence, table["finding"]):
                result.checked += 1
                result.issues.append(Issue("finding", phrase, (), sentence))
        if facts["duration"]:
            for said in durations_in(sentence):
                result.checked += 1
                if said not in facts["duration"]:
                    result.issues.append(Issue("duration", said, tuple(sorted(facts["duration"])), sentence))
    if photo:
        result.issues += _scan_claims(answer, question)
    return result


def says_not_a_scan(text: str) -> bool:
    """Whether ``text`` says the picture is not a radiograph or scan ("This is not an X-ray but a photo ...")."""
    return _SAYS_NO_SCAN.search(text) is not None


def _scan_claims(answer: str, question: str) -> list[Issue]:
    """Rule 5: an answer about a picture that is no scan, to a question about a scan or calling it one, that does
    not say it is none: one issue per sentence calling it a scan (removed if kept), else one for the answer."""
    if says_not_a_scan(answer):
        return []
    claims = []
    for sentence in sentences(answer):
        found = SCAN_WORDS.search(sentence)
        if found and _CLAIM.search(sentence) and not _CONDITIONAL.search(sentence):
            claims.append(Issue("domain", found.group(), (NOT_A_SCAN,), sentence))
    if not claims and asks_about_scan(question):
        claims.append(Issue("domain", "", (NOT_A_SCAN,), ""))
    return claims


def cited_ids(text: str) -> list[str]:
    """Every knowledge-base id ``text`` writes, bracketed or not, in citation form (``"ICD-10-CM R51.9"`` and
    ``"HP:0002315"`` read as ``"ICD-10 R51.9"`` and ``"HPO:0002315"``), in order."""
    found = [(m.start(), m.group(1).strip()) for m in _CITATION.finditer(text)]
    for m in _CODE_MENTION.finditer(text):
        source = {"ICD-10-CM": "ICD-10", "HP": "HPO"}.get(m.group(1), m.group(1))
        found.append((m.start(), f"{source}{':' if source in _COLON_SOURCES else ' '}{m.group(2)}"))
    taken = [range(m.start(), m.end()) for pattern in (_CITATION, _CODE_MENTION) for m in pattern.finditer(text)]
    for m in _BARE_CODE.finditer(text):
        said = f"ICD-10 {m.group(1)}" if m.group(1) else f"DrugBank {m.group(2)}"
        if not any(m.start() in span for span in taken) and said not in {f for _, f in found}:
            found.append((m.start(), said))  # "G44.201 [ICD-10 G44.201]" writes one id
    return [said for _, said in sorted(found)]


def _states_id(said: str, evidence: Sequence[Evidence]) -> bool:
    """Whether an evidence line states the id (a drug row lists its MedlinePlus and MeSH ids in its text)."""
    code = re.split(r"[: ]", said)[-1]
    return any(re.search(rf"(?<![\w.]){re.escape(code)}(?![\w])", e.text) for e in evidence)


def citations_in(text: str) -> list[str]:
    """The knowledge-base citations ``text`` writes, in order, once each: ``["ICD-10 G44.209", "HPO:0002315"]``."""
    return list(dict.fromkeys(m.group(1).strip() for m in _CITATION.finditer(text)))


def citation_suffix(answer: str, evidence: Sequence[Evidence]) -> str:
    """What to append so every knowledge row whose code or numbers the answer writes is cited: ``" [ICD-10 G44.209]"``
    after a one-sentence answer, else a ``Sources:`` line; ``""`` when nothing is missing."""
    missing = []
    quoted = [float(m.group(1).replace(",", "")) for m in _QUOTED.finditer(answer)]
    for e in evidence:
        for code, citation in zip(e.facts.get("code", ()), e.facts.get("citation", ())):
            writes_code = len(code) >= 3 and re.search(rf"(?<![\w.]){re.escape(code)}(?![\w])", answer)
            quotes_number = any(_same_number(q, n) for q in quoted for n in e.numbers)
            if (writes_code or quotes_number) and f"[{citation}]" not in answer and citation not in missing:
                missing.append(citation)
    if not missing:
        return ""
    cited = " ".join(f"[{c}]" for c in missing)
    return f" {cited}" if len(sentences(answer)) <= 1 else f"\n\nSources: {cited}"


def without_unsupported(answer: str, grounding: Grounding) -> str:
    """``answer`` without the sentences ``grounding`` found contradicting the evidence."""
    bad = {i.sentence for i in grounding.issues}
    kept = [s for s in sentences(answer) if s not in bad]
    return " ".join(kept)


def _stated(category: str, name: str, facts: set[str]) -> bool:
    if category == "modality":
        return any(terms.same_modality(name, f) for f in facts)
    if category == "body_part":
        return any(terms.same_body_part(name, f) for f in facts)
    return name in facts


def _same_number(value: float, evidence: float) -> bool:
    """Equal as written, or the evidence rounded to the precision the answer uses."""
    if value == evidence:
        return True
    decimals = 0 if value == int(value) else len(f"{value}".split(".")[1])
    return round(evidence, decimals) == round(value, decimals)


def _near(value: float, numbers: list[float]) -> tuple[str, ...]:
    best = min(numbers, key=lambda n: abs(n - value))
    return (f"{best:g}",)
