"""Patient utterances for the speech recipe: a small grammar, enumerated, then split.

Every utterance is one template x symptom x severity x duration, e.g.
"I have had a bad headache for three days." (8 x 16 x 4 x 8 = 4,096 distinct
sentences). The reply the model learns is fully determined by what was said:
the transcript, the symptom and duration as ``Name: value`` lines (scored by
``medany eval`` as field accuracy) and one short piece of advice fixed by the
symptom and by whether the complaint is long-standing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from multimodal.errors import InputError

from ..dataset import seeded

PROMPT = "Transcribe the patient and answer briefly."


@dataclass(frozen=True)
class Symptom:
    """A complaint: its name, whether it takes an article, and the advice it gets."""

    name: str
    countable: bool
    advice: str
    urgent: bool = False


SYMPTOMS = (
    Symptom("headache", True, "Rest, drink water and take paracetamol if needed."),
    Symptom("sore throat", True, "Warm drinks and throat lozenges should help."),
    Symptom("cough", True, "Drink plenty of fluids and rest."),
    Symptom("fever", True, "Rest, drink fluids and check your temperature twice a day."),
    Symptom("rash", True, "Keep the skin cool and try not to scratch."),
    Symptom("earache", True, "Use a warm compress and take paracetamol if needed."),
    Symptom("runny nose", True, "Rest and drink fluids; it usually settles in a week."),
    Symptom("toothache", True, "Please see a dentist; ibuprofen can ease the pain."),
    Symptom("back pain", False, "Keep moving gently and use a warm compress."),
    Symptom("knee pain", False, "Rest the knee, use ice and keep it raised."),
    Symptom("stomach pain", False, "Eat light meals and avoid alcohol and spicy food."),
    Symptom("nausea", False, "Sip clear fluids and eat small plain meals."),
    Symptom("dizziness", False, "Sit down when it starts and stand up slowly."),
    Symptom("heartburn", False, "Avoid late meals and raise the head of your bed."),
    Symptom("chest pain", False, "Chest pain needs urgent care; call emergency services now.", urgent=True),
    Symptom("shortness of breath", False, "Please get urgent medical help today.", urgent=True),
)
SEVERITIES = ("", "mild", "bad", "severe")
DURATIONS = ("two days", "three days", "five days", "a week", "ten days", "two weeks", "a month", "three months")
LONG_DURATIONS = frozenset({"two weeks", "a month", "three months"})
TEMPLATES = (
    "I have had {symptom} for {duration}.",
    "Doctor, I have had {symptom} for {duration}.",
    "For {duration} now I have had {symptom}.",
    "I have been suffering from {symptom} for {duration}.",
    "My main problem is {symptom}, it started {duration} ago.",
    "I came in because of {symptom} that has lasted {duration}.",
    "It has been {duration} and I still have {symptom}.",
    "Hello doctor, I have got {symptom} and it has been {duration}.",
)


@dataclass(frozen=True)
class Utterance:
    """One patient sentence and the facts it states."""

    text: str
    symptom: Symptom
    severity: str
    duration: str

    @property
    def fields(self) -> dict[str, str]:
        """What ``medany eval`` scores as field accuracy."""
        return {"symptom": self.symptom.name, "duration": self.duration}

    def reply(self) -> str:
        """The assistant turn: ``Transcript:`` line, field lines, then a short answer."""
        answer = self.symptom.advice
        if self.duration in LONG_DURATIONS and not self.symptom.urgent:
            answer += f" After {self.duration}, please book a visit with your doctor."
        return (f"Transcript: {self.text}\nSymptom: {self.symptom.name}\nDuration: {self.duration}\n"
                f"Answer: {answer}")


def _noun_phrase(symptom: Symptom, severity: str) -> str:
    words = " ".join(w for w in (severity, symptom.name) if w)
    if not symptom.countable:
        return words
    return ("an " if words[0] in "aeiou" else "a ") + words


def all_utterances() -> list[Utterance]:
    """Every sentence the grammar makes, in a fixed order."""
    out = []
    for template, symptom, severity, duration in itertools.product(TEMPLATES, SYMPTOMS, SEVERITIES, DURATIONS):
        text = template.format(symptom=_noun_phrase(symptom, severity), duration=duration)
        out.append(Utterance(text[0].upper() + text[1:], symptom, severity, duration))
    return out


def split_utterances(seed: int, eval_fraction: float = 0.2) -> tuple[list[Utterance], list[Utterance]]:
    """``(train, held_out)``: a seeded shuffle of :func:`all_utterances`, no sentence in both."""
    if not 0.0 < eval_fraction < 1.0:
        raise InputError("eval_fraction must be between 0 and 1.")
    pool = all_utterances()
    seeded(seed, "sentences").shuffle(pool)
    n_eval = round(len(pool) * eval_fraction)
    return pool[n_eval:], pool[:n_eval]
