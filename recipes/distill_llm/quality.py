"""``python -m recipes.distill_llm.quality DATA --llm embedded-small --llm OUT/student``: what the student keeps.

Every LLM named answers the held-out requests (``DATA/eval.jsonl``) through the stack, on the transformers
backend (student before and after on the same code path), greedily with the assistant's settings, cut to
whole sentences as the teacher's answers were. Scores per LLM, overall and per group:

- **agreement with the teacher**: ROUGE-L F1 and token F1 (SQuAD-style, over lower-cased words) against the
  teacher's answer, and the share of exact matches;
- **teacher-forced loss**: the student's cross-entropy (nats per token, its own tokens) of the teacher's
  answers: the quantity sequence-level distillation lowers;
- **faithfulness**, with ``benchmarks/faithfulness.py``'s scorer: fact recall (the symptom and duration of a
  transcript, the modality and body part of a header appear in the answer) and contradiction (the answer
  names another symptom, medicine, duration, modality, body part or view, or claims an image finding), plus
  the share the runtime grounding check flags and the share that gives the patient an age or sex the
  evidence does not (:func:`.prompts.invented_demographics`);
- answer length and seconds per answer.

The teacher's own answers get the faithfulness scores too (its agreement is 1 by definition).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from multimodal.backends.base import GenerationSettings
from multimodal.errors import MedAnyError
from multimodal.evaluate import normalize_words
from multimodal.grounding import check
from multimodal.template import encode_conversation

from ..distill import whole_sentences
from .kd import record_messages
from .prompts import invented_demographics, request_evidence


def token_f1(reference: str, answer: str) -> float:
    """Harmonic mean of word precision and recall (bag of words, lower-cased, punctuation dropped)."""
    ref, hyp = normalize_words(reference), normalize_words(answer)
    if not ref or not hyp:
        return float(ref == hyp)
    common = sum(min(ref.count(w), hyp.count(w)) for w in set(hyp))
    if not common:
        return 0.0
    p, r = common / len(hyp), common / len(ref)
    return 2 * p * r / (p + r)


def rouge_l(reference: str, answer: str) -> float:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"]).score(reference, answer)["rougeL"].fmeasure


def faithfulness_case(record: dict):
    """The ``benchmarks/faithfulness.py`` case of a held-out record: what its evidence line states."""
    from benchmarks.faithfulness import Case
    from multimodal import terms

    line = record["conversations"][1]["value"].split("\n")[0]
    evidence = request_evidence(record["kind"], line, record["source"])
    question = record["conversations"][1]["value"].split("Question: ", 1)[-1]
    if record["kind"] == "speech":
        expect = {k: evidence.facts[k] for k in ("symptom", "duration") if evidence.facts.get(k)}
        return Case(record["id"], "consult", question, expect=expect), evidence
    meta = record["source"]["meta"]
    expect = {"modality": (str(meta["modality"]).upper(),)}
    if evidence.facts.get("body_part"):
        expect["body_part"] = evidence.facts["body_part"]
    return Case(record["id"], "dicom", question, expect=expect, view=terms.VIEW_CODES.get(meta.get("view", ""))), \
        evidence


def score_answer(record: dict, answer: str) -> dict:
    """Faithfulness scores of one answer (no teacher needed)."""
    from benchmarks.faithfulness import score

    case, evidence = faithfulness_case(record)
    s = score(case, answer, [evidence])
    question = case.question
    return {"recall": s["recall"], "contradictions": s["contradictions"],
            "flagged": not check(answer, [evidence], question).ok,
            "invented": invented_demographics(answer, record["source"]), "words": len(answer.split())}


def answer_all(llm: str, records: list[dict], max_new_tokens: int, *, stack=None) -> dict:
    """``llm``'s answers and teacher-forced loss on ``records`` (transformers backend)."""
    from multimodal.config import StackConfig

    if stack is None:
        from multimodal.stack import StackSpec, build_stack

        stack = build_stack(StackSpec(llm=llm, backend="transformers"))
    backend, tok = stack.backend, stack.tokenizer
    settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=0.0,
                                  repetition_penalty=StackConfig().repetition_penalty)
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    eot = tok.eos_token_id if eot is None or eot == tok.unk_token_id else eot
    rows, nll, tokens, t0 = [], 0.0, 0, time.perf_counter()
    for r in records:
        messages = record_messages(r)
        prompt = encode_conversation(tok, messages[:-1], {}, add_generation_prompt=True).input_ids
        with torch.no_grad():
            out = list(backend.generate_ids(prompt, {}, settings))
            answer_ids = torch.tensor(tok(messages[-1]["content"], add_special_tokens=False)["input_ids"] + [eot])
            logp = backend.answer_logprobs(prompt, {}, answer_ids)  # [K]
        nll, tokens = nll - float(logp.sum()), tokens + answer_ids.numel()
        rows.append({"id": r["id"], "group": r["group"],
                     "answer": whole_sentences(tok.decode(out, skip_special_tokens=True))})
    seconds = time.perf_counter() - t0
    return {"llm": llm, "rows": rows, "teacher_loss": nll / max(tokens, 1), "s_per_answer": seconds / len(records)}


def summarize(records: list[dict], answers: dict[str, str], *, teacher: bool = False) -> dict:
    """Mean scores of ``answers`` (id -> text) over ``records``."""
    n = len(records)
    out = {"n": n}
    scored = [score_answer(r, answers[r["id"]]) for r in records]
    out["fact_recall"] = sum(s["recall"] for s in scored) / n
    out["contradiction"] = sum(bool(s["contradictions"]) for s in scored) / n
    out["flagged"] = sum(s["flagged"] for s in scored) / n
    out["invented"] = sum(bool(s["invented"]) for s in scored) / n
    out["words"] = sum(s["words"] for s in scored) / n
    if not teacher:
        refs = [(r["conversations"][2]["value"], answers[r["id"]]) for r in records]
        out["rouge_l"] = sum(rouge_l(a, b) for a, b in refs) / n
        out["token_f1"] = sum(token_f1(a, b) for a, b in refs) / n
        out["exact"] = sum(normalize_words(a) == normalize_words(b) for a, b in refs) / n
    return out


def report(records: list[dict], results: list[dict]) -> dict:
    """Per LLM (and the teacher): overall and per-group summaries."""
    groups = sorted({r["group"] for r in records})
    table = {}
    teacher = {r["id"]: r["conversations"][2]["value"] for r in records}
    entries = [("teacher (" + records[0]["teacher"]["llm"] + ")", teacher, True, None)]
    entries += [(res["llm"], {row["id"]: row["answer"] for row in res["rows"]}, False, res) for res in results]
    for name, answers, is_teacher, res in entries:
        table[name] = {"all": summarize(records, answers, teacher=is_teacher),
                       "groups": {g: summarize([r for r in records if r["group"] == g], answers, teacher=is_teacher)
                                  for g in groups}}
        if res is not None:
            table[name]["all"] |= {"teacher_loss": res["teacher_loss"], "s_per_answer": res["s_per_answer"]}
    return table


def markdown(table: dict) -> str:
    def pct(x):
        return f"{100 * x:.0f}%"

    lines = ["| LLM | ROUGE-L vs teacher | token F1 vs teacher | teacher-forced loss (nats/token) | fact recall | "
             "contradictions | flagged by the check | invents age / sex | words | s / answer |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, t in table.items():
        a = t["all"]
        agree = (f"{a['rouge_l']:.3f} | {a['token_f1']:.3f} | {a['teacher_loss']:.3f}" if "rouge_l" in a
                 else "- | - | -")
        lines.append(f"| {name} | {agree} | {pct(a['fact_recall'])} | {pct(a['contradiction'])} | "
                     f"{pct(a['flagged'])} | {pct(a['invented'])} | {a['words']:.0f} | "
                     f"{a.get('s_per_answer', 0):.1f} |")
    lines += ["", "| LLM | group | n | ROUGE-L | token F1 | fact recall | contradictions |",
              "|---|---|---|---|---|---|---|"]
    for name, t in table.items():
        for g, s in t["groups"].items():
            agree = f"{s['rouge_l']:.3f} | {s['token_f1']:.3f}" if "rouge_l" in s else "- | -"
            lines.append(f"| {name} | {g} | {s['n']} | {agree} | {pct(s['fact_recall'])} | {pct(s['contradiction'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.distill_llm.quality", description=__doc__.split("\n")[0])
    parser.add_argument("data", help="the folder written by python -m recipes.distill_llm.teacher")
    parser.add_argument("--llm", action="append", required=True, help="an LLM to score (name or folder); repeat")
    parser.add_argument("--max-new-tokens", type=int, help="default: the teacher's (manifest.json)")
    parser.add_argument("--limit", type=int, help="first N held-out records")
    parser.add_argument("--json", help="write every answer and score here")
    args = parser.parse_args(argv)
    from multimodal.cli import quiet_libraries
    from multimodal.machine import machine

    quiet_libraries()
    data = Path(args.data)
    try:
        records = [json.loads(x) for x in (data / "eval.jsonl").read_text().splitlines() if x.strip()]
        manifest = json.loads((data / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the held-out set in {data.name}: {exc}", file=sys.stderr)
        return 2
    records = records[: args.limit] if args.limit else records
    budget = args.max_new_tokens or manifest["max_new_tokens"]
    try:
        results = [answer_all(llm, records, budget) for llm in args.llm]
    except MedAnyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = report(records, results)
    print(f"Machine: {machine()}; {len(records)} held-out requests; greedy, {budget} new tokens max.\n")
    print(markdown(table))
    if args.json:
        Path(args.json).write_text(json.dumps({"table": table, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
