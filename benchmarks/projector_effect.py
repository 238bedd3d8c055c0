"""Does the image projector make the assistant's answers better? Measured through the real pipeline.

Runs the same requests through the stack twice, with the image projector (the
shipped default, or ``--projector DIR``) and without one (``none``: images are
grounded only by their text line), and prints Markdown:

1. held-out scans given as pictures (PNG, no header) with the recipe's caption
   questions: accuracy of the modality / body part / view named in the free-form
   answer (right value named, no other value of the field named), per held-out group;
   then the same questions about the DICOM files those pictures were rendered from
   (the header line names the fields: does the projector get in the way?);
2. the answers, side by side, to a few fixed requests: the sample chest film (DICOM)
   with the ``make demo`` question, a held-out scan picture, and the sample fruit photo.

    python benchmarks/projector_effect.py [--eval out/recipes/image/assistant/eval.jsonl] [--projector auto]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

FIXED = (
    ("sample chest film (DICOM)", "What does this chest film show, and what should the patient ask their doctor?",
     "sample:RG1_UNCR.dcm"),
    ("sample fruit photo", "What foods are in this photo, and are they a good snack for someone with diabetes?",
     "sample:fruits.jpg"),
)


def load_eval(path: Path) -> list[dict]:
    """Held-out records as ``{"image", "question", "fields", "group"}``."""
    rows = []
    for line in path.read_text().splitlines():
        r = json.loads(line)
        human = next(t["value"] for t in r["conversations"] if t["from"] == "human")
        rows.append({"image": str(path.parent / r["image"]), "question": human.rsplit("Question: ", 1)[-1],
                     "fields": r.get("fields", {}), "group": r.get("group", "all"), "source": r.get("source")})
    return rows


def score(rows: list[dict], answers: list[str]) -> dict:
    """Field accuracy overall and per group, read the way ``medany eval`` reads sentences."""
    from multimodal.evaluate import names_only

    choices: dict[str, set] = {}
    for r in rows:
        for k, v in r["fields"].items():
            choices.setdefault(k, set()).add(v)

    def acc(subset):
        out = {}
        for k in choices:
            hits = [names_only(a, r["fields"][k], choices[k]) for r, a in subset if k in r["fields"]]
            out[k] = (sum(hits), len(hits))
        return out

    pairs = list(zip(rows, answers))
    groups = sorted({r["group"] for r in rows})
    return {"all": acc(pairs), **{g: acc([p for p in pairs if p[0]["group"] == g]) for g in groups}}


def run(spec: str, rows: list[dict], max_new_tokens: int, llm: str = "embedded") -> dict:
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant

    assistant = Assistant.load(StackConfig(llm=llm, image_projector=spec, speech="", max_new_tokens=max_new_tokens))
    t0 = time.perf_counter()
    answers = [assistant.answer(r["question"], [r["image"]]) for r in rows]  # guarded, as a user sees them
    per_answer = (time.perf_counter() - t0) / max(len(rows), 1)
    dicoms = [r for r in rows if r["source"]]
    dicom_answers = [assistant.answer(r["question"], [f"sample:{r['source']}"]) for r in dicoms]
    fixed = [(name, q, assistant.answer(q, [img])) for name, q, img in FIXED]
    if rows:
        fixed.insert(1, ("held-out scan picture (PNG)", rows[0]["question"], answers[0]))
    projector = assistant.info.get("image", {}).get("projector")
    scores = score(rows, answers)
    if dicoms:
        scores["as DICOM"] = score(dicoms, dicom_answers)["all"]
    return {"scores": scores, "fixed": fixed, "s_per_answer": per_answer,
            "projector": projector and projector.get("sha256", "")[:12]}


def _cell(hit_n) -> str:
    hits, n = hit_n
    return f"{hits / n:.2f} ({hits}/{n})" if n else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval", default="out/recipes/image/assistant/eval.jsonl",
                        help="held-out records (python -m recipes.image.make_data OUT --style assistant)")
    parser.add_argument("--projector", default="auto", help="projector spec to compare against 'none'")
    parser.add_argument("--llm", default="embedded", help="the stack's LLM (the projector must be trained for it)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--limit", type=int, help="use only the first N held-out records")
    args = parser.parse_args(argv)
    from multimodal.cli import quiet_libraries

    quiet_libraries()
    path = Path(args.eval)
    rows = load_eval(path)[: args.limit] if path.is_file() else []
    if not rows:
        print(f"(no held-out records at {path}: only the fixed requests are run)", file=sys.stderr)
    results = {spec: run(spec, rows, args.max_new_tokens, args.llm) for spec in (args.projector, "none")}
    print(f"Machine: {platform.processor() or platform.machine()}, {platform.system()}; LLM {args.llm}; "
          f"{len(rows)} held-out scan pictures; greedy, {args.max_new_tokens} new tokens max.\n")
    fields = sorted({k for r in results.values() for k in r["scores"]["all"]})
    groups = list(next(iter(results.values()))["scores"])
    print("| image projector | held-out group | " + " | ".join(fields) + " | s / answer (PNG) |")
    print("|---|---|" + "---|" * len(fields) + "---|")
    for spec, res in results.items():
        label = f"{spec} ({res['projector']})" if res["projector"] else "none (text line only)"
        for g in groups:
            cells = [_cell(res["scores"][g].get(k, (0, 0))) for k in fields]
            print(f"| {label} | {g} | " + " | ".join(cells) + f" | {res['s_per_answer']:.1f} |")
    print()
    for i, (name, question, _) in enumerate(next(iter(results.values()))["fixed"]):
        print(f"**{name}**: {question}\n")
        for spec, res in results.items():
            answer = res["fixed"][i][2].replace("\n", " ")
            print(f"- {'with projector' if spec != 'none' else 'without'}: {answer}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
