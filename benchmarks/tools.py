"""Knowledge and tools, measured on a bundled set of 125 prompts (benchmarks/tools_eval.jsonl).

Each prompt carries its gold tool (or none), the gold arguments, the knowledge-base
rows that answer it, and the strings a correct answer contains (a code, a generic
name, a number computed from the food table). Categories: ICD-10 codes (40),
HPO phenotypes (15), drugs by brand (25), nutrients of a portion (20), questions the
knowledge base cannot answer (15), and questions that need no tool (10). Written for
MedAny; the gold ids were checked against the sources, never against MedAny's output.

Measured:

- **retrieval** (no LLM): each tool run with the gold arguments; recall@5 (a gold row
  among the first five) and abstention ("no match" for the unanswerable);
- **tool calls** (the LLM, every built-in tool offered, ``tool_choice="auto"``): JSON
  validity (the arguments parse and match the schema), tool selection (the gold tool, or
  none), argument exact match (gold arguments equal, strings compared case- and
  space-insensitively), and recall@5 with the model's own arguments;
- **answers**: with retrieval off (no knowledge, no tools), with retrieval on (the
  knowledge rows the pipeline links and searches, the default), and through the agent
  loop (``medany agent``): accuracy (an expected string in the answer), citation precision
  (written citations that are gold rows), and abstention on the unanswerable (no id
  written).

    python benchmarks/tools.py [--llm embedded] [--limit N] [--skip-answers] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

DATA = Path(__file__).with_name("tools_eval.jsonl")
ID = re.compile(r"\b[A-TV-Z]\d\d(?:\.\d{1,4})?\b|\bDB\d{5}\b|\bHPO?:\d{5,7}\b")  # an ICD-10, DrugBank or HPO id


def load(limit: int | None = None) -> list[dict]:
    items = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    if not limit:
        return items
    seen: dict = defaultdict(int)
    kept = []
    for item in items:
        seen[item["category"]] += 1
        if seen[item["category"]] <= limit:
            kept.append(item)
    return kept


def norm(value):
    return " ".join(value.lower().split()) if isinstance(value, str) else float(value)


def same_arguments(gold: dict, said: dict) -> bool:
    return all(k in said and norm(said[k]) == norm(v) for k, v in gold.items())


def cited(result: dict, k: int = 5) -> list[str]:
    return [r["citation"] for r in result.get("results", [])[:k]]


def retrieval(items, context) -> dict:
    """Each item's tool with its gold arguments: recall@5 for the answerable, abstention for the rest."""
    from multimodal.tools.registry import TOOLS

    hits, abstained, per = [], [], defaultdict(list)
    for item in items:
        if not item["tool"]:
            continue
        result = TOOLS[item["tool"]].call(item["arguments"], context)
        if item["category"] == "abstain":
            abstained.append(result.get("no_match", False))
        else:
            hit = bool(set(item["gold"]) & set(cited(result)))
            hits.append(hit)
            per[item["category"]].append(hit)
            item["retrieved"] = cited(result)
    return {"recall@5": mean(hits), "abstention": mean(abstained), "n": len(hits), "n_abstain": len(abstained),
            "by_category": {c: mean(v) for c, v in per.items()}}


def tool_calls(items, assistant, context) -> dict:
    from multimodal.calling import call_tools, function_specs
    from multimodal.tools.registry import TOOLS, ToolError, check_arguments

    specs = function_specs([t.openai() for t in TOOLS.values()])
    valid, selected, exact, hits, seconds = [], [], [], [], []
    per = defaultdict(list)
    for item in items:
        t = time.perf_counter()
        called = call_tools(assistant, assistant.request(item["prompt"], tools=specs), choice="auto")
        seconds.append(time.perf_counter() - t)
        first = called.calls[0] if called.calls else None
        for call in called.calls:
            try:
                check_arguments(TOOLS[call.name], call.arguments)
                valid.append(True)
            except ToolError:
                valid.append(False)
        ok = (first.name if first else None) == item["tool"]
        selected.append(ok)
        per[item["category"]].append(ok)
        item["called"] = [(c.name, c.arguments) for c in called.calls]
        if ok and first is not None:
            exact.append(same_arguments(item["arguments"], first.arguments))
            if item["category"] != "abstain":
                hits.append(bool(set(item["gold"]) & set(cited(TOOLS[first.name].call(first.arguments, context)))))
    return {"json_valid": mean(valid), "calls": len(valid), "selection": mean(selected), "n": len(selected),
            "argument_match": mean(exact), "n_right_tool": len(exact), "recall@5_model_args": mean(hits),
            "s_per_decision": mean(seconds), "selection_by_category": {c: mean(v) for c, v in per.items()}}


def answers(items, assistant, mode: str, max_new_tokens: int) -> dict:
    """``mode``: ``off`` (no knowledge, no tools), ``retrieval`` (the default pipeline) or ``agent``."""
    from multimodal.agent import run_agent
    from multimodal.grounding import cited_ids

    correct, precise, abstained, seconds = defaultdict(list), [], [], []
    for item in items:
        if item["category"] == "none":
            continue
        t = time.perf_counter()
        if mode == "agent":
            text = run_agent(assistant, item["prompt"]).done.answer.text
        else:
            text = assistant.respond(item["prompt"], max_new_tokens=max_new_tokens).answer.text
        seconds.append(time.perf_counter() - t)
        item[f"answer_{mode}"] = text
        ids = cited_ids(text)
        if item["category"] == "abstain":
            abstained.append(not ids and not ID.search(text))
            continue
        correct[item["category"]].append(any(a.lower() in text.lower() for a in item["answer"]))
        precise += [c in item["gold"] for c in ids]
    every = [x for v in correct.values() for x in v]
    return {"accuracy": mean(every), "n": len(every), "by_category": {c: mean(v) for c, v in correct.items()},
            "citation_precision": mean(precise), "citations": len(precise), "abstention": mean(abstained),
            "s_per_answer": mean(seconds)}


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="embedded")
    parser.add_argument("--limit", type=int, help="first N prompts of each category")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--skip-answers", action="store_true", help="retrieval and tool calls only")
    parser.add_argument("--json", help="write every item with what was called and answered here")
    args = parser.parse_args()

    from multimodal.cli import quiet_libraries
    from multimodal.config import StackConfig
    from multimodal.machine import machine
    from multimodal.pipeline import Assistant
    from multimodal.tools.registry import ToolContext

    quiet_libraries()
    items = load(args.limit)
    assistant = Assistant.load(StackConfig(llm=args.llm, max_new_tokens=args.max_new_tokens))
    context = ToolContext(knowledge=assistant.knowledge, speech=assistant.speech)
    t0 = time.perf_counter()
    r = retrieval(items, context)
    c = tool_calls(items, assistant, context)
    runs = {}
    if not args.skip_answers:
        off = Assistant(assistant.model, replace(assistant.config, knowledge="none"), vision=assistant.vision,
                        speech=assistant.speech, info=assistant.info, backend=assistant.backend)
        runs = {"off": answers(items, off, "off", args.max_new_tokens),
                "retrieval": answers(items, assistant, "retrieval", args.max_new_tokens),
                "agent": answers(items, assistant, "agent", args.max_new_tokens)}
    print(f"Machine: {machine()}; LLM {args.llm} "
          f"({assistant.backend.name}); {len(items)} prompts; {time.perf_counter() - t0:.0f} s\n")
    print("| measure | value | n | target |\n|---|---|---|---|")
    print(f"| retrieval recall@5, gold arguments | {pct(r['recall@5'])} | {r['n']} | >= 90% |")
    print(f"| abstention (no match), gold arguments | {pct(r['abstention'])} | {r['n_abstain']} | >= 90% |")
    print(f"| tool call JSON valid | {pct(c['json_valid'])} | {c['calls']} | 100% |")
    print(f"| tool selection (the gold tool, or none) | {pct(c['selection'])} | {c['n']} | |")
    print(f"| argument exact match (right tool) | {pct(c['argument_match'])} | {c['n_right_tool']} | |")
    print(f"| retrieval recall@5, the model's arguments | {pct(c['recall@5_model_args'])} | | |")
    print(f"| seconds per tool decision | {c['s_per_decision']:.2f} | | |")
    for mode, a in runs.items():
        print(f"| answer accuracy, {mode} | {pct(a['accuracy'])} | {a['n']} | |")
    for mode, a in runs.items():
        if mode != "off":
            print(f"| citation precision, {mode} | {pct(a['citation_precision'])} | {a['citations']} | >= 90% |")
    for mode, a in runs.items():
        print(f"| abstention in the answer (no id written), {mode} | {pct(a['abstention'])} | | >= 90% |")
    cats = ["icd10", "phenotype", "drug", "nutrient", "abstain", "none"]
    print("\n| category | recall@5 | tool selection | " + " | ".join(f"accuracy {m}" for m in runs) + " |")
    print("|---|---|---|" + "---|" * len(runs))
    for cat in cats:
        cells = [pct(r["by_category"].get(cat, float("nan"))), pct(c["selection_by_category"].get(cat, float("nan")))]
        cells += [pct(a["by_category"].get(cat, float("nan"))) for a in runs.values()]
        print(f"| {cat} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"retrieval": r, "tool_calls": c, "answers": runs, "items": items},
                                              indent=1))


if __name__ == "__main__":
    main()
