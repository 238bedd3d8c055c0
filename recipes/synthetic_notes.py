"""Synthetic doctor's notes with their ground truth, for measuring ``medany extract`` and testing ``medany cohort``.

Every note is written from templates (a header naming the patient, chief complaint,
history with affirmed, negated and uncertain problems, medications with doses, allergies,
assessment and plan) by a seeded generator that records what it put in: each problem,
medication (the generic name, also when a brand is written: "Advil" is ibuprofen) and
allergy, whether the note negates it, and whether a medication is an NSAID (the
generator's own label of the drugs it writes, for checking cohort answers; the extractor
never sees it); "Stopped taking X" is a medication not taken (negated). Notes go to
``clinic-a/`` and ``clinic-b/`` as .txt (80%), .md and .json (10% each); several notes
share a patient.

    python -m recipes.synthetic_notes OUT_DIR --n 2000 --seed 0 --truth truth.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

PROBLEMS = ["headache", "migraine", "fever", "cough", "nausea", "vomiting", "dizziness", "fatigue", "back pain",
            "chest pain", "rash", "diarrhea", "abdominal pain", "sore throat", "shortness of breath", "palpitations",
            "insomnia", "constipation", "joint pain", "wheezing", "chills", "knee pain", "heartburn", "anxiety",
            "blurred vision", "weight loss"]
# (written, generic name, NSAID?, dose, frequency)
DRUGS = [("ibuprofen", "ibuprofen", True, "400 mg", "three times a day"),
         ("Advil", "ibuprofen", True, "200 mg", "as needed"),
         ("Motrin", "ibuprofen", True, "600 mg", "twice a day"),
         ("naproxen", "naproxen", True, "500 mg", "twice a day"),
         ("Aleve", "naproxen", True, "220 mg", "as needed"),
         ("aspirin", "aspirin", True, "81 mg", "daily"),
         ("ketoprofen", "ketoprofen", True, "50 mg", "three times a day"),
         ("diclofenac", "diclofenac", True, "50 mg", "twice a day"),
         ("celecoxib", "celecoxib", True, "200 mg", "once a day"),
         ("meloxicam", "meloxicam", True, "15 mg", "daily"),
         ("acetaminophen", "acetaminophen", False, "500 mg", "every 6 hours"),
         ("Tylenol", "acetaminophen", False, "650 mg", "as needed"),
         ("metformin", "metformin", False, "500 mg", "twice a day"),
         ("lisinopril", "lisinopril", False, "10 mg", "daily"),
         ("atorvastatin", "atorvastatin", False, "20 mg", "at night"),
         ("amlodipine", "amlodipine", False, "5 mg", "daily"),
         ("omeprazole", "omeprazole", False, "20 mg", "in the morning"),
         ("sertraline", "sertraline", False, "50 mg", "daily"),
         ("amoxicillin", "amoxicillin", False, "500 mg", "three times a day"),
         ("levothyroxine", "levothyroxine", False, "50 mcg", "in the morning"),
         ("prednisone", "prednisone", False, "10 mg", "daily"),
         ("gabapentin", "gabapentin", False, "300 mg", "at bedtime")]
ALLERGIES = ["penicillin", "sulfa drugs", "latex", "peanuts", "codeine"]
DURATIONS = ["2 days", "three days", "a week", "two weeks", "a month", "several months"]
SUFFIX_WEIGHTS = ((".txt", 8), (".md", 1), (".json", 1))


def corpus(n: int, seed: int = 0) -> list[dict]:
    """``n`` notes: ``{"note_id", "patient_id", "content" (the file's), "findings": [...]}``, deterministic in
    ``seed``."""
    rng = random.Random(seed)
    patients = [f"P{i:06d}" for i in range(max(1, n // 3))]
    suffixes = [s for s, w in SUFFIX_WEIGHTS for _ in range(w)]
    return [_note(rng, i, rng.choice(patients), rng.choice(suffixes)) for i in range(n)]


def write_corpus(folder: str | Path, n: int, seed: int = 0, truth: str | Path | None = None) -> list[dict]:
    """Write :func:`corpus` ``(n, seed)`` under ``folder`` (and its truth, one JSON line per note, to ``truth``);
    returns the notes."""
    folder = Path(folder)
    notes = corpus(n, seed)
    for note in notes:
        path = folder / note["note_id"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(note["content"], encoding="utf-8")
    if truth is not None:
        with open(truth, "w", encoding="utf-8") as fh:
            for note in notes:
                fh.write(json.dumps({k: v for k, v in note.items() if k != "content"}) + "\n")
    return notes


def _note(rng: random.Random, i: int, patient: str, suffix: str) -> dict:
    problems = rng.sample(PROBLEMS, rng.randint(2, 5))
    if rng.random() < 0.3 and "headache" not in problems:  # headache is common: the cohort example asks for it
        problems[0] = "headache"
    affirmed, negated = problems[:max(1, len(problems) - 2)], problems[max(1, len(problems) - 2):]
    uncertain = affirmed.pop() if len(affirmed) > 1 and rng.random() < 0.2 else None
    drugs = _drugs(rng)
    stopped = drugs.pop() if len(drugs) > 1 and rng.random() < 0.15 else None
    allergy = rng.choice(ALLERGIES) if rng.random() < 0.3 else None
    age, person = rng.randint(18, 90), rng.choice(["man", "woman"])
    pronoun = "He" if person == "man" else "She"

    hpi = f"{age}-year-old {person} with {affirmed[0]} for {rng.choice(DURATIONS)}."
    if len(affirmed) > 1:
        hpi += f" {pronoun} also reports {_join(affirmed[1:])}."
    if negated:
        hpi += " " + rng.choice([f"Denies {_join(negated, 'or')}.", f"No {_join(negated, 'or')}.",
                                 f"Negative for {_join(negated, 'or')}."])
    if uncertain:
        hpi += f" Possible {uncertain}."
    meds = "; ".join(f"{said} {dose} {frequency}" for said, _, _, dose, frequency in drugs) + "."
    if stopped:
        meds += f" Stopped taking {stopped[0]}."
    allergies = f"Allergic to {allergy}." if allergy else rng.choice(["No known drug allergies.", "NKDA."])
    plan = f"{affirmed[0].capitalize()}. Continue {drugs[0][0]} and follow up in {rng.randint(1, 6)} weeks."
    body = (f"Chief complaint: {affirmed[0]}.\n\nHistory of present illness: {hpi}\n\nMedications: {meds}\n\n"
            f"Allergies: {allergies}\n\nAssessment and plan: {plan}\n")
    date = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    clinic = "clinic-a" if i % 2 == 0 else "clinic-b"
    if suffix == ".json":
        content = json.dumps({"patient_id": patient, "date": date, "text": body}, indent=1)
    elif suffix == ".md":
        content = f"# Clinic note\n\nPatient ID: {patient}\nDate: {date}\n\n{body}"
    else:
        content = f"Patient ID: {patient}\nDate: {date}\nNote type: clinic visit\n\n{body}"

    findings = [{"kind": "problem", "name": p, "negated": False, "uncertain": False} for p in affirmed]
    findings += [{"kind": "problem", "name": p, "negated": True, "uncertain": False} for p in negated]
    if uncertain:
        findings.append({"kind": "problem", "name": uncertain, "negated": False, "uncertain": True})
    findings += [{"kind": "medication", "name": generic, "said": said, "negated": False, "nsaid": nsaid}
                 for said, generic, nsaid, _, _ in drugs]
    if stopped:
        findings.append({"kind": "medication", "name": stopped[1], "said": stopped[0], "negated": True,
                         "nsaid": stopped[2]})
    if allergy:
        findings.append({"kind": "allergy", "name": allergy, "negated": False})
    return {"note_id": f"{clinic}/note-{i:05d}{suffix}", "patient_id": patient, "content": content,
            "findings": findings}


def _drugs(rng: random.Random) -> list[tuple]:
    """1-3 drugs, no generic name twice (a note does not list Advil and ibuprofen as two medicines)."""
    out, generics = [], set()
    for drug in rng.sample(DRUGS, rng.randint(1, 4)):
        if drug[1] not in generics:
            generics.add(drug[1])
            out.append(drug)
    return out[:3]


def _join(words: list[str], last: str = "and") -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" {last} {words[-1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="where to write the notes (created)")
    parser.add_argument("--n", type=int, default=2000, help="how many notes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--truth", help="write the ground truth here (JSON lines)")
    args = parser.parse_args(argv)
    notes = write_corpus(args.folder, args.n, args.seed, args.truth)
    print(f"{len(notes)} notes in {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
