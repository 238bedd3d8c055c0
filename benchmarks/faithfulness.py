"""Does the answer keep to its evidence? Generated cases across the three workspaces, through the real pipeline.

Every case gives the assistant one kind of evidence and asks about it:

- **consult** (20): a transcript naming a symptom, a duration and a medicine, as the
  Consult workspace sends it (the clinician's transcript as evidence); the question asks
  for a summary of what the patient reported.
- **photo** (20): a photo the classifier labels (a correct top food, a runner-up; six
  with a close runner-up), through the pipeline's classifier line; "what food is this?".
- **dicom** (16): real DICOM files from ``pydicom-data``, some with edited headers
  (modality, body part, view), decoded and de-identified by the real loader;
  "which modality and body part?".
- **meal** (12): a plate of 1-3 foods from the bundled USDA table, as the Dietitian
  workspace sends it (nutrient totals with their daily-value share, the patient's
  context); "how much <nutrient> ...?".

Scores (independent of the runtime grounding check, and stricter):

- **fact recall**: the key facts appear in the answer (symptom, duration and medicine;
  the top food; modality and body part; the asked nutrient's total with its unit).
- **contradiction**: the answer names a different symptom, medicine, duration, food
  (first food named is not the top label, or a weak runner-up is named), modality,
  body part (first one named; a structure within the stated region, such as the heart of
  a chest film, or the region holding it is the same study) or view, claims an image finding
  at all, or quotes a number the
  table does not give. Negated mentions ("not a trifle") do not count.
- **numbers right**: of the numbers written with a unit in meal answers, the share equal
  to the table's (as shown, or rounded to the precision the answer uses).

Each case is answered once (``raw``, the first draft) and, when the runtime grounding
check flags that draft, revised as the demo and ``Assistant.answer`` do (``guarded``: what
a user sees). Prints Markdown tables; ``--json`` keeps every answer.

    python benchmarks/faithfulness.py [--llm embedded --llm embedded-0.5b --llm embedded-small] [--limit N]
        [--backend transformers] [--image-projector none]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SEED = 0
LLMS = ("embedded", "embedded-0.5b", "embedded-small")

SYMPTOM_SPOKEN = {"headache": "a terrible headache", "cough": "a dry cough", "fever": "a fever",
                  "sore throat": "a sore throat", "back pain": "back pain", "chest pain": "chest pain",
                  "earache": "an earache", "toothache": "a toothache", "nausea": "nausea",
                  "dizziness": "dizziness", "rash": "an itchy rash on my arm", "shortness of breath":
                  "shortness of breath", "abdominal pain": "abdominal pain", "diarrhoea": "diarrhoea"}
DURATIONS = ("two days", "three days", "five days", "a week", "ten days", "two weeks", "four days", "six hours")
MEDICINES = ("paracetamol", "ibuprofen", "amoxicillin", "cetirizine", "omeprazole", "aspirin", "naproxen",
             "salbutamol", "loratadine", "codeine")
CONSULT_TEMPLATES = (
    "I have had {symptom} for {duration}. I took {medicine} but it did not help much.",
    "Doctor, I have been suffering from {symptom} for {duration}, and I have been taking {medicine}.",
    "It started {duration} ago: {symptom}. My pharmacist gave me {medicine}.",
    "For {duration} now I have had {symptom}. I tried {medicine} twice a day.",
)
CONSULT_QUESTIONS = (
    "Summarise what the patient reported: the symptom, how long it has lasted, and the medicine they took.",
    "What is the patient's complaint, since when, and what have they taken for it?",
)
PHOTO_QUESTIONS = ("What food is in this photo?", "Which food did the camera see?", "Name the food on this plate.")
DICOM_QUESTIONS = ("What kind of study is this? Name the imaging modality and the body part.",
                   "Which imaging modality and body region does this file show?")
# (pydicom test file, header edits): real files, and copies whose header says something else.
DICOM_FILES = (
    ("RG1_UNCR.dcm", {}), ("RG3_UNCR.dcm", {}), ("J2K_pixelrep_mismatch.dcm", {}), ("bad_sequence.dcm", {}),
    ("MR-SIEMENS-DICOM-WithOverlays.dcm", {}), ("emri_small.dcm", {}),
    ("CT_small.dcm", {"BodyPartExamined": "CHEST"}), ("CT_small.dcm", {"BodyPartExamined": "ABDOMEN"}),
    ("CT_small.dcm", {"BodyPartExamined": "PELVIS"}), ("MR_small.dcm", {"BodyPartExamined": "KNEE"}),
    ("MR_small.dcm", {"BodyPartExamined": "SPINE"}), ("RG1_UNCR.dcm", {"Modality": "DX", "ViewPosition": "AP"}),
    ("RG3_UNCR.dcm", {"BodyPartExamined": "HAND", "ViewPosition": "PA"}),
    ("examples_palette.dcm", {"BodyPartExamined": "ABDOMEN"}),
    ("RG1_UNCR.dcm", {"Modality": "DX", "BodyPartExamined": "KNEE", "ViewPosition": "LATERAL"}),
    ("CT_small.dcm", {"BodyPartExamined": "HEAD"}),
)
MEAL_NUTRIENTS = (("sodium_mg", "sodium"), ("energy_kcal", "energy"), ("fibre_g", "fibre"),
                  ("potassium_mg", "potassium"), ("protein_g", "protein"), ("carbohydrate_g", "carbohydrate"))
PATIENTS = ("Adult with type 2 diabetes and high blood pressure; aims for a low-sodium diet.",
            "Teenager training for a marathon.", "Older adult with chronic kidney disease.")


@dataclass
class Case:
    """One request and what a faithful answer must (and must not) say."""

    id: str
    workspace: str
    question: str
    expect: dict = field(default_factory=dict)
    """Category -> canonical names that must appear (``duration``: ``"3 day"``)."""
    number: tuple[float, str] | None = None
    """Meal cases: the asked total and its unit."""
    images: list = field(default_factory=list)
    context: list = field(default_factory=list)
    labels: list | None = None
    """Photo cases: what the stand-in classifier reports, best first."""
    view: str | None = None
    """DICOM cases: the header's view (naming another one contradicts it; not asked, so not recalled)."""


# -- cases --------------------------------------------------------------------------------


def consult_cases(rng: random.Random, n: int = 20) -> list[Case]:
    from demos.consult import consult_evidence

    out = []
    symptoms = list(SYMPTOM_SPOKEN)
    for i in range(n):
        symptom, duration, medicine = symptoms[i % len(symptoms)], rng.choice(DURATIONS), rng.choice(MEDICINES)
        text = CONSULT_TEMPLATES[i % len(CONSULT_TEMPLATES)].format(
            symptom=SYMPTOM_SPOKEN[symptom], duration=duration, medicine=medicine)
        evidence = consult_evidence(text[0].upper() + text[1:])
        out.append(Case(f"consult-{i:02d}", "consult", CONSULT_QUESTIONS[i % 2], context=[evidence],
                        expect={"symptom": (symptom,), "medicine": (medicine,),
                                "duration": evidence.facts["duration"]}))
    return out


def photo_cases(rng: random.Random, n: int = 20) -> list[Case]:
    from multimodal import terms

    foods = sorted(terms.foods())
    out = []
    for i in range(n):
        top, second = rng.sample(foods, 2)
        close = i % 10 >= 7  # 6 of 20 with a close runner-up
        p1 = rng.uniform(0.50, 0.60) if close else rng.uniform(0.62, 0.97)
        p2 = rng.uniform(0.30, 0.45) if close else rng.uniform(0.01, 0.12)
        p3 = rng.uniform(0.0, 0.01)
        third = rng.choice([f for f in foods if f not in (top, second)])
        labels = [(top, round(p1, 2)), (second, round(p2, 2)), (third, round(p3, 3))]
        out.append(Case(f"photo-{i:02d}", "photo", PHOTO_QUESTIONS[i % 3], expect={"food": (top,)},
                        images=[_photo_pixels(i)], labels=labels))
    return out


def dicom_cases(folder: Path) -> list[Case]:
    import pydicom
    from pydicom.data import get_testdata_file

    from multimodal import terms
    from multimodal.io import load_image

    out = []
    for i, (name, edits) in enumerate(DICOM_FILES):
        ds = pydicom.dcmread(get_testdata_file(name))
        for key, value in edits.items():
            setattr(ds, key, value)
        path = folder / f"case-{i:02d}.dcm"
        ds.save_as(path, enforce_file_format=False)
        image = load_image(str(path))
        modality = str(image.meta.get("modality") or "").upper()
        part = str(image.meta.get("body_part") or "").upper().replace(" ", "")
        expect = {"modality": (modality,)}
        if part in terms.BODY_PARTS:
            expect["body_part"] = (part,)
        view = terms.VIEW_CODES.get(str(image.meta.get("view") or ""))
        out.append(Case(f"dicom-{i:02d}", "dicom", DICOM_QUESTIONS[i % 2], expect=expect, images=[image], view=view))
    return out


def meal_cases(rng: random.Random, n: int = 12) -> list[Case]:
    from demos.dietitian import advice_context
    from demos.nutrition import NUTRIENTS, food_names, meal_totals

    units = {k: u for k, _, u in NUTRIENTS}
    out = []
    for i in range(n):
        plate = [(f, rng.randrange(50, 310, 10)) for f in rng.sample(food_names(), rng.randint(1, 3))]
        key, label = MEAL_NUTRIENTS[i % len(MEAL_NUTRIENTS)]
        summary = meal_totals(plate)
        unit = units[key]
        shown = float(f"{summary.totals[key]:.0f}" if unit in ("kcal", "mg") else f"{summary.totals[key]:.1f}")
        out.append(Case(f"meal-{i:02d}", "meal", f"How much {label} does this meal have, and is that a lot for "
                                                 "this patient? Quote the meal's numbers exactly.",
                        number=(shown, unit), context=advice_context(summary, PATIENTS[i % len(PATIENTS)])))
    return out


def all_cases(folder: Path, seed: int = SEED) -> list[Case]:
    rng = random.Random(seed)
    return consult_cases(rng) + photo_cases(rng) + dicom_cases(folder) + meal_cases(rng)


def _photo_pixels(i: int):
    import numpy as np

    from multimodal.io.types import MedicalImage

    pixels = np.random.default_rng(i).random((96, 96, 3), dtype=np.float32)  # colour: never a "scan"
    return MedicalImage(pixels, {}, "photo")


# -- scoring ------------------------------------------------------------------------------


def _mentions(text: str, category: str) -> list[tuple[int, str]]:
    """``[(position, canonical)]`` of non-negated mentions of ``category`` in ``text``."""
    from multimodal import terms
    from multimodal.grounding import _NEGATION

    return [(pos, name) for pos, name, _ in terms.mentions(text, terms.categories()[category])
            if not _NEGATION.search(text[:pos])]


def quoted_numbers(text: str) -> list[float]:
    from multimodal.grounding import _QUOTED

    return [float(m.group(1).replace(",", "")) for m in _QUOTED.finditer(text)]


def score(case: Case, answer: str, evidence) -> dict:
    """``{"recall": bool, "contradictions": [...], "numbers": (right, quoted)}`` for one answer."""
    from multimodal import terms
    from multimodal.evidence import durations_in
    from multimodal.grounding import _same_number

    said = {c: [n for _, n in _mentions(answer, c)] for c in ("symptom", "medicine", "food", "modality",
                                                             "body_part", "view", "finding")}
    recall = True
    for category, names in case.expect.items():
        found = durations_in(answer) if category == "duration" else said.get(category, [])
        if category == "modality":
            recall &= any(terms.same_modality(f, n) for f in found for n in names)
        else:
            recall &= all(n in found for n in names)
    wrong: list[str] = []
    facts = {c: {n for e in evidence for n in e.facts.get(c, ())} for c in ("symptom", "medicine", "duration")}
    if case.workspace == "consult":
        wrong += [f"symptom {s}" for s in said["symptom"] if s not in facts["symptom"]]
        wrong += [f"medicine {m}" for m in said["medicine"] if m not in facts["medicine"]]
        wrong += [f"duration {d}" for d in durations_in(answer) if d not in facts["duration"]]
    elif case.workspace == "photo":
        top = case.labels[0][0]
        weak = {name for name, p in case.labels if p < 0.5 * case.labels[0][1]}
        if said["food"] and said["food"][0] != top:
            wrong.append(f"first food {said['food'][0]}")
        wrong += [f"runner-up {f}" for f in said["food"] if f in weak]
    elif case.workspace == "dicom":
        if said["modality"] and not any(terms.same_modality(said["modality"][0], m) for m in case.expect["modality"]):
            wrong.append(f"modality {said['modality'][0]}")
        if "body_part" in case.expect and said["body_part"] and not any(
                terms.same_body_part(said["body_part"][0], part) for part in case.expect["body_part"]):
            wrong.append(f"body part {said['body_part'][0]}")
        if case.view and said["view"] and said["view"][0] != case.view:
            wrong.append(f"view {said['view'][0]}")
        wrong += [f"finding {f}" for f in said["finding"]]
    numbers = (0, 0)
    if case.workspace == "meal":
        table = [n for e in evidence for n in e.numbers]
        quoted = quoted_numbers(answer)
        right = [q for q in quoted if any(_same_number(q, t) for t in table)]
        numbers = (len(right), len(quoted))
        wrong += [f"number {q:g}" for q in quoted if q not in right]
        value, unit = case.number
        recall = any(_same_number(q, value) for q in quoted)
    return {"recall": bool(recall), "contradictions": sorted(set(wrong)), "numbers": numbers}


# -- running ------------------------------------------------------------------------------


class FixedLabels:
    """The stack's vision encoder with its classifier head's output fixed to a case's labels."""

    def __init__(self, vision, labels):
        self._vision, self._labels = vision, labels
        self.trained_head = True

    def __getattr__(self, name):
        return getattr(self._vision, name)

    def classify(self, image, top_k: int = 3):
        return self._labels[:top_k]


def run_llm(llm: str, cases: list[Case], max_new_tokens: int, backend: str = "auto",
            image_projector: str = "auto") -> dict:
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant

    t0 = time.perf_counter()
    assistant = Assistant.load(StackConfig(llm=llm, speech="", max_new_tokens=max_new_tokens, backend=backend,
                                           image_projector=image_projector))
    load_s = time.perf_counter() - t0
    vision, rows = assistant.vision, []
    t0 = time.perf_counter()
    for case in cases:
        assistant.vision = FixedLabels(vision, case.labels) if case.labels else vision
        raw = assistant.answer(case.question, case.images, context=case.context, guard=False)
        draft = assistant.last_answer
        guarded = raw
        if not draft.grounding.ok:
            for _ in assistant.revise():
                pass
            guarded = assistant.last_answer.text
        rows.append({"id": case.id, "workspace": case.workspace, "question": case.question,
                     "evidence": [e.line for e in draft.evidence], "raw": raw, "guarded": guarded,
                     "flagged": not draft.grounding.ok, "issues": [i.describe() for i in draft.grounding.issues],
                     "raw_score": score(case, raw, draft.evidence),
                     "guarded_score": score(case, guarded, draft.evidence)})
    assistant.vision = vision
    return {"llm": llm, "backend": assistant.backend.name, "load_s": load_s,
            "s_per_case": (time.perf_counter() - t0) / max(len(cases), 1), "rows": rows}


def summarize(rows: list[dict], key: str) -> dict:
    n = len(rows)
    recall = sum(r[key]["recall"] for r in rows) / max(n, 1)
    contra = sum(bool(r[key]["contradictions"]) for r in rows) / max(n, 1)
    right = sum(r[key]["numbers"][0] for r in rows)
    quoted = sum(r[key]["numbers"][1] for r in rows)
    meals = [r for r in rows if r["workspace"] == "meal"]
    all_right = sum(r[key]["numbers"][0] == r[key]["numbers"][1] for r in meals)
    return {"n": n, "recall": recall, "contradiction": contra, "numbers_right": right, "numbers_quoted": quoted,
            "meals_all_right": all_right, "meals": len(meals)}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_tables(results: list[dict]) -> None:
    print("| LLM | backend | answers | cases | fact recall | contradictions | quoted numbers right | "
          "meal answers with every number right | revised | s / case |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for res in results:
        rows = res["rows"]
        flagged = sum(r["flagged"] for r in rows)
        for key, label in (("raw_score", "first draft"), ("guarded_score", "guarded (shown)")):
            s = summarize(rows, key)
            nums = f"{s['numbers_right']}/{s['numbers_quoted']}" if s["numbers_quoted"] else "none quoted"
            print(f"| {res['llm']} | {res['backend']} | {label} | {s['n']} | {_pct(s['recall'])} | "
                  f"{_pct(s['contradiction'])} | {nums} | {s['meals_all_right']}/{s['meals']} | "
                  f"{flagged if key == 'guarded_score' else '-'} | {res['s_per_case']:.1f} |")
    print()
    print("| LLM | workspace | cases | recall (guarded) | contradictions (guarded) | recall (draft) | "
          "contradictions (draft) |")
    print("|---|---|---|---|---|---|---|")
    for res in results:
        for ws in ("consult", "photo", "dicom", "meal"):
            rows = [r for r in res["rows"] if r["workspace"] == ws]
            g, d = summarize(rows, "guarded_score"), summarize(rows, "raw_score")
            print(f"| {res['llm']} | {ws} | {g['n']} | {_pct(g['recall'])} | {_pct(g['contradiction'])} | "
                  f"{_pct(d['recall'])} | {_pct(d['contradiction'])} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llm", action="append", help=f"LLM(s) to measure (default: {', '.join(LLMS)})")
    parser.add_argument("--limit", type=int, help="first N cases of each workspace")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--json", help="write every case, answer and score here")
    parser.add_argument("--backend", default="auto", choices=["auto", "llamacpp", "transformers"],
                        help="LLM backend (transformers: a distilled student folder and its base on one code path)")
    parser.add_argument("--image-projector", default="auto",
                        help="auto (the shipped one for each LLM), none, a shipped name or a folder")
    parser.add_argument("--show", type=int, default=3, help="print this many failing answers per LLM")
    args = parser.parse_args(argv)
    from multimodal.cli import quiet_libraries

    quiet_libraries()
    with tempfile.TemporaryDirectory() as tmp:
        cases = all_cases(Path(tmp))
        if args.limit:
            cases = [c for ws in ("consult", "photo", "dicom", "meal")
                     for c in [c for c in cases if c.workspace == ws][: args.limit]]
        results = [run_llm(llm, cases, args.max_new_tokens, args.backend, args.image_projector)
                   for llm in (args.llm or LLMS)]
    from multimodal.machine import machine

    print(f"Machine: {machine()}; {len(cases)} cases; greedy, {args.max_new_tokens} new tokens "
          f"max; image projector {args.image_projector!r}"
          f"{' (the stack picks one per LLM)' if args.image_projector == 'auto' else ''}; backend {args.backend}.\n")
    print_tables(results)
    for res in results:
        bad = [r for r in res["rows"] if r["guarded_score"]["contradictions"] or not r["guarded_score"]["recall"]]
        for r in bad[: args.show]:
            print(f"\n{res['llm']} {r['id']}: {r['guarded_score']} | {' / '.join(r['evidence'])}\n"
                  f"  -> {r['guarded'][:300]!r}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # demos/, run as a script from a clone
    sys.exit(main())
