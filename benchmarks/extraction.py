"""``medany extract`` measured: notes per second over a generated corpus, and precision/recall against its truth.

:mod:`recipes.synthetic_notes` writes N notes (default 2,000) with their ground truth;
``medany extract`` reads them with the bundled knowledge base, once per worker count
(each run a fresh table: the time covers reading, extraction, coding, the part files and
the final table), and the findings are scored against the truth: a finding is right
when its note, kind, name (problems by the words written, medications by generic name,
allergies by the substance written) and negation all match. The cohort example is scored
too: patients with an affirmed headache (HPO:0002315) and an NSAID (ICD-10-CM T39.0 /
T39.3), asked with ``medany cohort``, against the patients the generator gave both.

    flock /tmp/medany-heavy.lock python benchmarks/extraction.py [--n 2000] [--workers 1 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

COHORT_SQL = ("SELECT patient FROM patients WHERE list_contains(problem_codes, 'HP:0002315') AND "
              "len(list_filter(drug_class_codes, lambda c: c LIKE 'T39.0%' OR c LIKE 'T39.3%')) > 0")


def found_keys(rows: list[dict]) -> set[tuple]:
    """The findings of the table as ``(note, kind, name, negated)``."""
    keys = set()
    for r in rows:
        name = r["concept"] if r["kind"] == "medication" else r["text"]
        keys.add((r["note_id"], r["kind"], (name or "").lower(), bool(r["negated"])))
    return keys


def truth_keys(notes: list[dict]) -> set[tuple]:
    return {(n["note_id"], f["kind"], f["name"].lower(), f["negated"]) for n in notes for f in n["findings"]}


def score(found: set[tuple], truth: set[tuple]) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 per kind (and over all), with the counts behind them."""
    out = {}
    for kind in ("problem", "medication", "allergy", "all"):
        f = {k for k in found if kind in ("all", k[1])}
        t = {k for k in truth if kind in ("all", k[1])}
        tp = len(f & t)
        p = tp / len(f) if f else 0.0
        r = tp / len(t) if t else 0.0
        out[kind] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                     "found": len(f), "truth": len(t), "right": tp}
    return out


def truth_cohort(notes: list[dict]) -> set[str]:
    """Patients the generator gave an affirmed headache and an NSAID they take (in any of their notes)."""
    headache, nsaid = set(), set()
    for n in notes:
        for f in n["findings"]:
            if f["kind"] == "problem" and f["name"] == "headache" and not f["negated"] and not f["uncertain"]:
                headache.add(n["patient_id"])
            if f["kind"] == "medication" and f["nsaid"] and not f["negated"]:
                nsaid.add(n["patient_id"])
    return headache & nsaid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="notes to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker processes to time")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()

    import pyarrow.parquet as pq

    from multimodal.knowledge.build import open_knowledge
    from multimodal.machine import machine
    from multimodal.notes.cohort import query
    from multimodal.notes.extract import run_extraction
    from recipes.synthetic_notes import write_corpus

    open_knowledge()  # built once, outside the timing
    with tempfile.TemporaryDirectory(prefix="medany-extract-bench-") as tmp:
        folder = Path(tmp) / "notes"
        notes = write_corpus(folder, args.n, args.seed)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        timings = []
        for workers in args.workers:
            out = Path(tmp) / f"table-{workers}.parquet"
            t = time.perf_counter()
            summary = run_extraction(folder, out, workers=workers)
            wall = time.perf_counter() - t
            timings.append({"workers": workers, "notes": summary.read, "seconds": summary.seconds, "wall": wall,
                            "notes_per_s": summary.notes_per_second, "findings": summary.findings})
        rows = pq.read_table(out).to_pylist()
        quality = score(found_keys(rows), truth_keys(notes))
        _, answer = query(out, COHORT_SQL)
        got, want = {r[0] for r in answer}, truth_cohort(notes)
        cohort = {"answered": len(got), "truth": len(want), "right": len(got & want),
                  "precision": len(got & want) / len(got) if got else 0.0,
                  "recall": len(got & want) / len(want) if want else 0.0}
        coded = Counter((r["kind"], r["code"] is not None) for r in rows)
        classes = Counter(r["concept"] for r in rows if r["kind"] == "medication" and r["drug_class_code"])

    print(f"Machine: {machine()}; {args.n} generated notes ({size / 1e6:.1f} MB, seed {args.seed}), the bundled "
          "knowledge base.\n")
    print("| workers | notes | seconds | notes/s | findings |")
    print("|---|---|---|---|---|")
    for t in timings:
        print(f"| {t['workers']} | {t['notes']} | {t['seconds']:.1f} | {t['notes_per_s']:.1f} | {t['findings']} |")
    print("\n| findings | precision | recall | F1 | found | in the truth |")
    print("|---|---|---|---|---|---|")
    for kind, s in quality.items():
        print(f"| {kind} | {s['precision']:.1%} | {s['recall']:.1%} | {s['f1']:.1%} | {s['found']} | {s['truth']} |")
    print(f"\nCohort 'headache (HP:0002315) and an NSAID (ICD-10-CM T39.0/T39.3)': {cohort['answered']} patients "
          f"answered, {cohort['truth']} in the truth, {cohort['right']} right (precision {cohort['precision']:.1%}, "
          f"recall {cohort['recall']:.1%}).")
    for kind in ("problem", "medication", "allergy"):
        total = coded[(kind, True)] + coded[(kind, False)]
        print(f"{kind} rows with a code: {coded[(kind, True)]}/{total}")
    print("medications with an ICD-10-CM class: " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items())))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "n": args.n, "timings": timings,
                                               "quality": quality, "cohort": cohort}, indent=1))


if __name__ == "__main__":
    main()
