"""A consultation as a note: structured findings by rules, SOAP sections by the LLM under a JSON schema, FHIR.

:func:`extract` reads a transcript (English: Whisper's translation of speech in
another language) the way ConText does (Chapman et al., 2011): sentences are cut
into clauses at ``;``, ``but``, ``although`` ...; a negation ("no", "not", "denies",
"without" ...) or uncertainty ("maybe", "I think" ...) trigger earlier in a clause
covers every finding after it in that clause ("no fever or chills", but "a headache
but no fever"); a medicine is also not taken when the words just before it stop it
("stopped taking ibuprofen", "discontinued metformin"). The rules run on
:mod:`multimodal.context`, the engine the report labeler shares. Symptoms and medicines
are the concepts the knowledge base links (HPO phenotypes, drugs), or the grounding
check's own short lists without one; a medicine's dose, route and frequency, and a
symptom's duration, come from the same clause. "Allergic to X" makes an allergy.

:func:`write_note` adds the four SOAP sections, written by the LLM as one JSON
object (constrained decoding: every section present) from the transcript and those
findings as evidence. :meth:`ConsultNote.fhir_bundle` gives a FHIR R4B (4.3, the R4
resources used here are unchanged) collection Bundle through the same path as the
imaging report (:mod:`multimodal.fhir`): the SOAP sections as a preliminary
Composition (once written), a Condition per symptom (negated ones as ``refuted``),
a MedicationStatement per medicine, an AllergyIntolerance per allergy, each coded
with the knowledge base's ids.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from encoders.languages import language_name

from . import fhir, terms
from .context import Rules, Trigger, words
from .evidence import WORD_NUMBERS, durations_in, note_evidence, transcript_evidence
from .prompt import transcript_summary

# ConText rules for what a patient says: a clause ends at a sentence end or at "but", "although" ...; a negation
# covers what follows it in its clause, an uncertainty the whole clause.
_CONSULT = Rules(
    triggers=(Trigger(words(r"no", r"not", r"never", r"denies", r"denied", r"deny", r"without", r"none", r"nor",
                            r"neither", r"free of", r"negative for", r"don't", r"doesn't", r"didn't", r"haven't",
                            r"hasn't", r"isn't", r"wasn't", r"can't"), "negated"),
              Trigger(words(r"maybe", r"perhaps", r"possibly", r"possible", r"probably", r"might", r"may be",
                            r"could be", r"not sure", r"unsure", r"i think", r"i guess", r"seems?", r"suspect(?:ed)?"),
                      "uncertain", "both")),
    terminations=r"(?!)",  # the clause boundaries below already cut at every termination term
    boundaries=r"[.;!?\n]+|,?\s+\b(?:but|although|though|however|whereas|except)\b")
_STOPPED = re.compile(r"\b(?:stopped|stop|discontinued|discontinue|quit|ceased|ran out of)"
                      r"(?:\s+(?:taking|using|the|his|her|their|my|your))*\s*$", re.IGNORECASE)
"""A medicine stopped: the words just before its name (not a ConText trigger: one further back may have stopped
something else, "the headache stopped after paracetamol", and it never covers a symptom)."""
_UNIT = (r"mg|milligrams?|mcg|micrograms?|g|grams?|ml|millilit(?:er|re)s?|tablets?|pills?|capsules?|puffs?|drops?|"
         r"units?|teaspoons?|sachets?")
_DOSE = re.compile(rf"\b(\d+(?:\.\d+)?|{'|'.join(WORD_NUMBERS)}|a|an|half a)\s*({_UNIT})\b", re.IGNORECASE)
_FREQUENCY = re.compile(r"\b(?:(?:once|twice|thrice|(?:\w+|\d+) times)\s+(?:a|per|each|every)\s+(?:day|week|night)|"
                        r"every\s+(?:\d+|\w+)\s+hours?|every (?:day|morning|evening|night)|daily|nightly|"
                        r"at (?:night|bedtime)|in the (?:morning|evening)|as needed|when needed)\b", re.IGNORECASE)
_ROUTES = (("inhaled", r"\binhal\w*|\bpuffs?\b|\binhaler\b"), ("topical", r"\bcream\b|\bointment\b|\bgel\b|\btopical"),
           ("injection", r"\binject\w*|\bshots?\b"), ("eye drops", r"\beye drops?\b"),
           ("oral", r"\bby mouth\b|\borally\b|\btablets?\b|\bpills?\b|\bcapsules?\b|\bsyrup\b"))
_ALLERGY = re.compile(r"\ballergic to ([\w' -]+?)(?=[.,;!?]|\band\b|\bbut\b|$)|\ballerg(?:y|ies) to ([\w' -]+?)"
                      r"(?=[.,;!?]|\band\b|\bbut\b|$)", re.IGNORECASE)


@dataclass
class Symptom:
    name: str
    """As the patient said it ("sore throat"); the knowledge base's name is :attr:`concept`."""
    said: str
    """The clause it was found in."""
    negated: bool = False
    uncertain: bool = False
    duration: str | None = None
    """``"3 day"`` (amount and unit, as the grounding check writes durations)."""
    codes: tuple[str, ...] = ()
    """Knowledge-base citations: ``("HPO:0002315",)``."""
    concept: str = ""
    """The knowledge base's name for it ("Pharyngalgia"), when it is linked."""
    span: tuple[int, int] | None = None
    """Where the words that named it are in the text read: ``(start, end)`` character offsets."""


@dataclass
class Medication:
    name: str
    said: str
    negated: bool = False
    dose: str | None = None
    route: str | None = None
    frequency: str | None = None
    codes: tuple[str, ...] = ()
    span: tuple[int, int] | None = None
    """Where the words that named it are in the text read: ``(start, end)`` character offsets."""


@dataclass
class Allergy:
    substance: str
    said: str
    codes: tuple[str, ...] = ()
    span: tuple[int, int] | None = None
    """Where the substance is named in the text read: ``(start, end)`` character offsets."""


@dataclass
class ConsultNote:
    """What a consultation said, structured, and its SOAP sections."""

    transcript: str
    language: str = "en"
    english: str = ""
    symptoms: list[Symptom] = field(default_factory=list)
    medications: list[Medication] = field(default_factory=list)
    allergies: list[Allergy] = field(default_factory=list)
    subjective: str = ""
    objective: str = ""
    assessment: str = ""
    plan: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def to_markdown(self) -> str:
        """The note as a clinician reads it: the four sections, then the coded findings."""
        lines = [f"**{k.title()}.** {getattr(self, k)}" for k in SOAP_SECTIONS]
        rows = [f"| symptom | {s.name} | {'absent' if s.negated else 'uncertain' if s.uncertain else 'present'}"
                f"{f', {_plural(s.duration)}' if s.duration else ''} | {', '.join(s.codes)} |" for s in self.symptoms]
        rows += [f"| medicine | {m.name} | {_dosage(m)} | {', '.join(m.codes)} |" for m in self.medications]
        rows += [f"| allergy | {a.substance} | - | {', '.join(a.codes)} |" for a in self.allergies]
        if rows:
            lines += ["", "| finding | name | detail | codes |", "|---|---|---|---|", *rows]
        return "\n\n".join(lines[:4]) + ("\n" + "\n".join(lines[4:]) if rows else "")

    def findings_line(self) -> str:
        """The findings as one evidence line: what the LLM writes the sections from."""
        parts = [f"{'no ' if s.negated else ''}{s.name}{f' for {_plural(s.duration)}' if s.duration else ''}"
                 f"{' (uncertain)' if s.uncertain else ''}" for s in self.symptoms]
        parts += [f"{'not taking ' if m.negated else ''}{m.name}"
                  + "".join(f" {x}" for x in (m.dose, m.route, m.frequency) if x) for m in self.medications]
        parts += [f"allergic to {a.substance}" for a in self.allergies]
        return "; ".join(parts) or "nothing the rules recognise"

    def fhir_bundle(self) -> dict:
        """A FHIR R4B collection Bundle (:func:`multimodal.fhir.collection`, validated by ``fhir.resources``): the
        SOAP sections as a Composition when they are written, then the structured findings."""
        entries = [_composition(self)] if any(getattr(self, k) for k in SOAP_SECTIONS) else []
        entries += [_condition(s) for s in self.symptoms]
        entries += [_medication_statement(m) for m in self.medications]
        entries += [_allergy(a) for a in self.allergies]
        return fhir.collection(entries)


def extract(text: str, knowledge=None) -> tuple[list[Symptom], list[Medication], list[Allergy]]:
    """The symptoms, medicines and allergies ``text`` (English) states, with negation, uncertainty, durations,
    doses, routes and frequencies (see the module docstring)."""
    symptoms: dict[str, Symptom] = {}
    medications: dict[str, Medication] = {}
    allergies = _allergies(text, knowledge)
    allergic = {a.substance.lower() for a in allergies}
    for offset, clause in _clauses(text):
        spans = _CONSULT.triggers_in(clause)
        for start, end, name, kind, codes, concept in _mentions(clause, knowledge):
            found = _CONSULT.kinds(clause, start, start, spans)  # the name may differ from the words said
            span = (offset + start, offset + end)
            if kind == "symptom" and name not in symptoms:
                durations = durations_in(clause)
                symptoms[name] = Symptom(name, clause, "negated" in found, "uncertain" in found,
                                         durations[0] if durations else None, codes, concept, span)
            elif kind == "medicine" and name not in medications and name.lower() not in allergic:
                dose, frequency = _DOSE.search(clause), _FREQUENCY.search(clause)
                route = next((r for r, pattern in _ROUTES if re.search(pattern, clause, re.IGNORECASE)), None)
                stopped = "negated" in found or bool(_STOPPED.search(clause[:start]))
                medications[name] = Medication(name, clause, stopped,
                                               " ".join(dose.groups()).lower() if dose else None, route,
                                               frequency.group(0).lower() if frequency else None, codes, span)
    return list(symptoms.values()), list(medications.values()), allergies


def write_note(assistant, transcript: str, language: str = "en", english: str = "",
               max_chars: int | None = None) -> ConsultNote:
    """The structured findings of ``transcript`` (read from ``english`` for another ``language``) and the SOAP
    sections the assistant's LLM writes from them, as JSON under :func:`soap_schema`. Each section is at most
    ``max_chars`` long: by default the stack's ``max_new_tokens`` (four sections of N characters are about N
    tokens), from 16 to 200."""
    from .calling import json_answer
    from .structured import MAX_STRING_CHARS

    if max_chars is None:
        max_chars = min(MAX_STRING_CHARS, max(16, assistant.config.max_new_tokens))

    read = english or transcript
    symptoms, medications, allergies = extract(read, assistant.knowledge)
    note = ConsultNote(transcript, language, english, symptoms, medications, allergies)
    evidence = [transcript_evidence("Consultation", transcript_summary("recording", transcript,
                                                                       language_name(language), english),
                                    read, language),
                note_evidence("Findings", note.findings_line())]
    sections, *_ = json_answer(assistant, assistant.request(SOAP_QUESTION), soap_schema(max_chars), evidence)
    note.subjective, note.objective, note.assessment, note.plan = (_whole(sections[k], max_chars)
                                                                   for k in SOAP_SECTIONS)
    return note


def _whole(section: str, max_chars: int) -> str:
    """A section cut by its length limit, back to its last whole sentence (when it has one)."""
    section = section.strip()
    if len(section) < max_chars:
        return section
    end = max(section.rfind(". "), section.rfind("! "), section.rfind("? "), section.rfind("."))
    return section[:end + 1] if end > 0 else section


SOAP_SECTIONS = ("subjective", "objective", "assessment", "plan")


def soap_schema(max_chars: int = 200) -> dict:
    """The JSON schema of the SOAP sections: an object of four required strings."""
    return {"type": "object", "required": list(SOAP_SECTIONS),
            "properties": {k: {"type": "string", "minLength": 1, "maxLength": max_chars} for k in SOAP_SECTIONS}}


SOAP_QUESTION = ("Write the consultation's SOAP note: subjective (what the patient reports), objective (what was "
                 "measured or observed; write 'Not recorded.' when nothing was), assessment and plan. Use only the "
                 "consultation and its findings.")


def _clauses(text: str):
    """``(offset, clause)``: the clauses of ``text`` (see the module docstring), stripped, with where each starts."""
    for a, b in _CONSULT.sentences(text):
        piece = text[a:b]
        yield a + len(piece) - len(piece.lstrip()), piece.strip()


def _mentions(clause: str, knowledge) -> list[tuple[int, int, str, str, tuple[str, ...], str]]:
    """``(start, end, name, "symptom"|"medicine", citations, concept)`` in ``clause``, from the knowledge base's
    links and the grounding check's lists, in reading order, each span once. A symptom is named as said, a
    medicine by its generic name."""
    found, taken = [], []
    if knowledge is not None:
        for hit in knowledge.link(clause, kinds={"phenotype", "drug"}):
            at = clause.lower().find(hit.mention.lower())
            if at >= 0:
                kind = "symptom" if hit.kind == "phenotype" else "medicine"
                name = hit.mention.lower() if kind == "symptom" else hit.name
                found.append((at, at + len(hit.mention), name, kind, (hit.citation,), hit.name))
                taken.append(range(at, at + len(hit.mention)))
    table = terms.categories()
    for kind in ("symptom", "medicine"):
        for start, name, phrase in terms.mentions(clause, table[kind]):
            if not any(start in span for span in taken):
                end = terms.phrase_pattern(phrase).match(clause, start).end()
                found.append((start, end, name, kind, (), ""))
                taken.append(range(start, end))
    return sorted(found)


def _allergies(text: str, knowledge) -> list[Allergy]:
    out = []
    for m in _ALLERGY.finditer(text):
        group = 1 if m.group(1) else 2
        said = m.group(group).strip()
        substance = re.sub(r"^(?:the|a|an|some)\s+", "", said, flags=re.IGNORECASE)
        end = m.start(group) + len(m.group(group)) - len(m.group(group).lstrip()) + len(said)
        span = (end - len(substance), end)
        codes = ()
        if knowledge is not None:
            hits = knowledge.link(substance, kinds={"drug", "food"}, everyday=True)
            codes = (hits[0].citation,) if hits else ()
            substance = hits[0].name if hits else substance
        out.append(Allergy(substance, m.group(0), codes, span))
    return out


def _dosage(m: Medication) -> str:
    return "not taken" if m.negated else " ".join(x for x in (m.dose, m.route, m.frequency) if x) or "taken"


def _plural(duration: str) -> str:
    amount, unit = duration.split()
    return f"{amount} {unit}{'' if amount == '1' else 's'}"


# LOINC's document sections of a SOAP note.
_SOAP_CODES = {"subjective": ("61150-9", "Subjective Narrative"), "objective": ("61149-1", "Objective Narrative"),
               "assessment": ("51848-0", "Evaluation note"), "plan": ("18776-5", "Plan of care note")}


def _composition(note: ConsultNote) -> dict:
    """The SOAP sections as a preliminary Composition (LOINC 11488-4, consult note) written by MedAny."""
    from datetime import datetime, timezone

    sections = [{"title": k.title(), "code": fhir.concept("LOINC", *_SOAP_CODES[k]),
                 "text": fhir.narrative([(k.title(), [getattr(note, k)])])} for k in SOAP_SECTIONS]
    return {"resourceType": "Composition", "status": "preliminary", "title": "Consultation SOAP note",
            "type": fhir.concept("LOINC", "11488-4", "Consult note"),
            "date": datetime.now(timezone.utc).replace(microsecond=0).isoformat(), "author": [fhir.DEVICE],
            "subject": {"display": "the patient of this consultation"},
            "section": sections}


def _condition(s: Symptom) -> dict:
    resource = {"resourceType": "Condition", "code": {**fhir.coding(s.codes, s.concept or s.name), "text": s.name},
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                          "code": "problem-list-item"}]}],
                "subject": {"display": "the patient of this consultation"},
                "verificationStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "refuted" if s.negated else ("provisional" if s.uncertain else "confirmed")}]},
                "note": [{"text": s.said}]}
    if s.duration:
        resource["onsetString"] = f"{_plural(s.duration)} before the consultation"
    return resource


def _medication_statement(m: Medication) -> dict:
    dosage = _dosage(m) if not m.negated else ""
    dosage = "" if dosage == "taken" else dosage
    resource = {"resourceType": "MedicationStatement", "status": "not-taken" if m.negated else "active",
                "medicationCodeableConcept": fhir.coding(m.codes, m.name),
                "subject": {"display": "the patient of this consultation"}, "note": [{"text": m.said}]}
    if dosage:
        resource["dosage"] = [{"text": dosage}]
    return resource


def _allergy(a: Allergy) -> dict:
    return {"resourceType": "AllergyIntolerance", "code": fhir.coding(a.codes, a.substance),
            "patient": {"display": "the patient of this consultation"},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "code": "unconfirmed"}]},
            "note": [{"text": a.said}]}
