"""Consult notes, measured: how often the structured fields of a note are right, from text and from speech.

48 consults are generated from parts written here (12 symptoms, 6 negated symptoms,
8 medicines, doses, frequencies, durations) through 4 sentence patterns, each with
its gold fields: the symptom, its duration, the medicine (by generic name), its
dose, and the symptom the patient says they do not have. :func:`multimodal.consult_note.extract`
reads each one as typed, and again from speech (espeak-ng -> Whisper -> transcript).
Field accuracy = right fields / all fields; the issue's target is 90% on English.

    python benchmarks/consult_note.py [--no-speech] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

SYMPTOMS = ["headache", "cough", "sore throat", "nausea", "dizziness", "back pain", "fever", "rash", "diarrhea",
            "fatigue", "chest pain", "shortness of breath"]
NEGATED = ["fever", "vomiting", "chest pain", "cough", "chills", "rash"]
DRUGS = [("ibuprofen", "ibuprofen"), ("paracetamol", "acetaminophen"), ("amoxicillin", "amoxicillin"),
         ("omeprazole", "omeprazole"), ("metformin", "metformin"), ("loratadine", "loratadine"),
         ("cetirizine", "cetirizine"), ("naproxen", "naproxen")]
DOSES = [("200 mg", "200 mg"), ("500 mg", "500 mg"), ("one tablet", "one tablet"), ("two tablets", "two tablets"),
         ("10 mg", "10 mg"), ("20 mg", "20 mg")]
FREQUENCIES = ["twice a day", "once a day", "every 8 hours", "at night"]
DURATIONS = [("three days", "3 day"), ("two weeks", "2 week"), ("five days", "5 day"), ("a week", "1 week"),
             ("ten days", "10 day"), ("four days", "4 day")]
PATTERNS = [
    "I have had {symptom} for {duration}. I take {dose} of {drug} {frequency}. I do not have {negated}.",
    "For {duration} now I have had {symptom}, but no {negated}. I have been taking {drug}, {dose} {frequency}.",
    "Doctor, the {symptom} started {duration} ago. No {negated}. My pharmacist gave me {drug}, {dose} {frequency}.",
    "I've been suffering from {symptom} for about {duration}, without any {negated}. I use {dose} of {drug} "
    "{frequency}.",
]
FIELDS = ("symptom", "duration", "drug", "dose", "negation")


def consults(n: int = 48) -> list[dict]:
    """``n`` consults with their gold fields (deterministic: parts are cycled at co-prime strides)."""
    out = []
    for i in range(n):
        symptom = SYMPTOMS[i % len(SYMPTOMS)]
        negated = next(x for x in itertools.islice(itertools.cycle(NEGATED), i, i + len(NEGATED)) if x != symptom)
        said_drug, generic = DRUGS[(i * 3) % len(DRUGS)]
        dose, gold_dose = DOSES[(i * 5) % len(DOSES)]
        duration, gold_duration = DURATIONS[(i * 7) % len(DURATIONS)]
        text = PATTERNS[i % len(PATTERNS)].format(symptom=symptom, duration=duration, drug=said_drug, dose=dose,
                                                  frequency=FREQUENCIES[i % len(FREQUENCIES)], negated=negated)
        out.append({"id": f"consult-{i:02d}", "text": text, "gold": {"symptom": symptom, "duration": gold_duration,
                                                                     "drug": generic, "dose": gold_dose,
                                                                     "negation": negated}})
    return out


def score(gold: dict, symptoms, medications) -> dict[str, bool]:
    """Which of the five fields the extracted findings get right."""
    affirmed = [s for s in symptoms if not s.negated and gold["symptom"] in s.name]
    refuted = [s for s in symptoms if s.negated and gold["negation"] in s.name]
    drugs = [m for m in medications if m.name.lower() == gold["drug"] and not m.negated]
    return {"symptom": bool(affirmed),
            "duration": bool(affirmed) and affirmed[0].duration == gold["duration"],
            "drug": bool(drugs),
            "dose": bool(drugs) and drugs[0].dose == gold["dose"],
            "negation": bool(refuted) and not any(gold["negation"] in s.name for s in symptoms if not s.negated)}


def run(items, read, kb) -> tuple[dict, list]:
    from multimodal.consult_note import extract

    per_field = {f: [] for f in FIELDS}
    rows = []
    for item in items:
        text = read(item)
        symptoms, medications, _ = extract(text, kb)
        got = score(item["gold"], symptoms, medications)
        for f in FIELDS:
            per_field[f].append(got[f])
        rows.append({"id": item["id"], "read": text, "fields": got})
    return {f: sum(v) / len(v) for f, v in per_field.items()}, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-speech", action="store_true", help="typed consults only")
    parser.add_argument("--json", help="write every consult, what was read and each field's score here")
    args = parser.parse_args()

    from multimodal.knowledge.build import open_knowledge
    from multimodal.machine import machine

    kb = open_knowledge()
    items = consults()
    t = time.perf_counter()
    results = {"typed": run(items, lambda item: item["text"], kb)}
    typed_s = time.perf_counter() - t
    if not args.no_speech:
        from encoders import create_encoder
        from multimodal.io.tts import synthesize

        base = create_encoder("medany-whisper-base")
        results["spoken (espeak-ng -> Whisper base)"] = run(
            items, lambda item: base.transcribe(synthesize(item["text"]), language="en", translate=False).text, kb)
    print(f"Machine: {machine()}; {len(items)} generated English consults; rules only "
          f"({typed_s / len(items) * 1000:.0f} ms per typed consult).\n")
    print("| read from | " + " | ".join(FIELDS) + " | all fields |")
    print("|---|" + "---|" * (len(FIELDS) + 1))
    for name, (acc, _) in results.items():
        overall = sum(acc.values()) / len(acc)
        print(f"| {name} | " + " | ".join(f"{acc[f]:.1%}" for f in FIELDS) + f" | {overall:.1%} |")
    if args.json:
        Path(args.json).write_text(json.dumps({k: {"accuracy": a, "rows": r} for k, (a, r) in results.items()},
                                              indent=1))


if __name__ == "__main__":
    main()
