"""The report labeler against the hand-labelled fixture: per-label and micro/macro F1, dev and held-out test.

The fixture (multimodal/reportmetrics/fixtures/) is 60 short chest X-ray reports written
for MedAny and labelled by hand with the 14 CheXpert labels: the rules were developed
on the dev half; the test half was written and committed before the labeler existed.
As in the CheXpert paper, F1 is reported per value: positive (1), negative (0),
uncertain (-1), and mention (any value, not blank), over (report, label) cells.

    python benchmarks/report_labeler.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time


def table(split: str, result: dict) -> list[str]:
    from multimodal.reportmetrics import LABELS

    def f(v):
        return "-" if v is None else f"{v:.2f}"

    lines = [f"\n{split}: {result['reports']} reports; exact reports {result['exact_reports']:.2f}, "
             f"exact cells {result['exact_cells']:.3f}",
             "| label | positive F1 (n) | negative F1 (n) | uncertain F1 (n) | mention F1 (n) |",
             "|---|---|---|---|---|"]
    for name in LABELS:
        cells = [result[t]["per_label"][name] for t in ("positive", "negative", "uncertain", "mention")]
        lines.append(f"| {name} | " + " | ".join(f"{f(c['f1'])} ({c['support']})" for c in cells) + " |")
    for avg in ("micro_f1", "macro_f1"):
        lines.append(f"| **{avg.replace('_f1', '')}** | "
                     + " | ".join(f(result[t][avg]) for t in ("positive", "negative", "uncertain", "mention")) + " |")
    for wrong in result["wrong"]:
        lines.append(f"  wrong: {wrong['id']} {wrong['text']!r} gold/got {wrong['labels']}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    from multimodal.machine import machine
    from multimodal.reportmetrics import check_labeler, fixture_rows, label_many

    results = {split: check_labeler(split) for split in ("dev", "test")}
    texts = [r["text"] for s in ("dev", "test") for r in fixture_rows(s)] * 50
    t0 = time.perf_counter()
    label_many(texts)
    per_report_ms = (time.perf_counter() - t0) / len(texts) * 1000
    print(f"machine: {machine()}; labelling: {per_report_ms:.2f} ms per report "
          f"({len(texts)} reports, one thread)")
    for split, result in results.items():
        print("\n".join(table(split, result)))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"per_report_ms": per_report_ms, **results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
