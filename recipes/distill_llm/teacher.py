"""``python -m recipes.distill_llm.teacher OUT``: the teacher (the 1.5B default) answers the requests.

Each request of :mod:`.prompts` is answered greedily by the teacher with the assistant's own generation
settings (llama.cpp for the GGUF, as the assistant answers), cut to whole sentences. A training answer is
kept only when it keeps to its evidence: the runtime grounding check passes
(:func:`multimodal.grounding.check`) and it gives the patient no age or sex the evidence does not
(:func:`.prompts.invented_demographics`): a frozen 1.5B that reads "sex F" and writes "a male patient", or
turns a transcript into "a 50-year-old woman", is not a reply to teach. Held-out answers are all kept
(they are the reference the student is compared to) with the check's verdict beside them.

For logit distillation every kept answer is then scored teacher-forced once more, and the ``top_k``
most likely next tokens at each answer position are stored with their log-probabilities, as token
strings (the two vocabularies differ; :mod:`.kd` maps them), with each token's character offset in the
answer and the end-of-turn token last.

Answers are cached in ``OUT/teacher_cache.jsonl`` as they come, so ``--budget-s`` can cut a long run
into parts that each stay under the shared machine's ten-minute rule; run the same command again to go
on. The splits (``train.jsonl``, ``eval.jsonl``, LLaVA format, text only) and ``manifest.json`` are
written once every request has its answer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

from multimodal.backends.base import GenerationSettings
from multimodal.errors import MedAnyError
from multimodal.grounding import check
from multimodal.template import encode_conversation

from ..dataset import write_manifest, write_split
from ..distill import whole_sentences
from .prompts import Request, build_requests, invented_demographics

TOP_K = 10
MAX_NEW_TOKENS = 128


def answer_topk(backend, tokenizer, prompt_ids: torch.Tensor, answer: str, k: int = TOP_K) -> dict:
    """The teacher's top-``k`` next tokens at each token of ``answer`` (then its end-of-turn token), teacher-forced.

    Returns ``{"tokens", "offsets", "topk_tokens", "topk_logprobs"}``: the answer's own tokens as vocabulary
    strings, each one's character offset in ``answer`` (the end-of-turn token sits at ``len(answer)``), and
    per position the ``k`` best token strings with their log-probabilities (over the whole vocabulary).
    """
    enc = tokenizer(answer, add_special_tokens=False, return_offsets_mapping=True)
    eot = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if eot is None or eot == tokenizer.unk_token_id:
        eot = tokenizer.eos_token_id
    ids = list(enc["input_ids"]) + [eot]
    offsets = [a for a, _ in enc["offset_mapping"]] + [len(answer)]
    logits = backend.answer_logits(prompt_ids, {}, torch.tensor(ids))  # [K, V]
    logp = torch.log_softmax(logits.float(), dim=-1)
    top = logp.topk(k, dim=-1)  # values, indices: [K, k]
    return {"tokens": tokenizer.convert_ids_to_tokens(ids), "offsets": offsets,
            "topk_tokens": [tokenizer.convert_ids_to_tokens(row) for row in top.indices.tolist()],
            "topk_logprobs": [[round(v, 4) for v in row] for row in top.values.tolist()]}


class Teacher:
    """A text-only stack of ``llm`` that answers requests greedily and scores its answers' top-k."""

    def __init__(self, llm: str = "embedded", backend: str = "auto", *, max_new_tokens: int = MAX_NEW_TOKENS,
                 top_k: int = TOP_K, threads: int = 0, stack=None):
        from multimodal.config import StackConfig

        if stack is None:
            from multimodal.stack import StackSpec, build_stack

            stack = build_stack(StackSpec(llm=llm, backend=backend, threads=threads))
        self.llm, self.stack, self.top_k = llm, stack, top_k
        self.backend, self.tokenizer = stack.backend, stack.tokenizer
        self.settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=0.0,
                                           repetition_penalty=StackConfig().repetition_penalty)

    def key(self, request: Request) -> str:
        """Cache key: the teacher, its settings and the exact prompt."""
        what = [self.llm, self.settings.max_new_tokens, self.settings.repetition_penalty, self.top_k,
                request.messages()]
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]

    def answer(self, request: Request) -> dict:
        """``{"answer", "new_tokens", "gen_s", "teacher"}`` (``teacher``: :func:`answer_topk`, or None when empty)."""
        prompt = encode_conversation(self.tokenizer, request.messages(), {}, add_generation_prompt=True).input_ids
        t0 = time.perf_counter()
        out = list(self.backend.generate_ids(prompt, {}, self.settings))
        gen_s = time.perf_counter() - t0
        text = whole_sentences(self.tokenizer.decode(out, skip_special_tokens=True))
        topk = answer_topk(self.backend, self.tokenizer, prompt, text, self.top_k) if text else None
        return {"answer": text, "new_tokens": len(out), "gen_s": round(gen_s, 3), "teacher": topk}


def verdict(request: Request, answer: str) -> list[str]:
    """Why a teacher answer may not be taught (empty: it keeps to its evidence)."""
    if not answer:
        return ["empty answer"]
    grounding = check(answer, [request.evidence()], request.question)
    why = [issue.describe() for issue in grounding.issues]
    return why + invented_demographics(answer, request.source)


def to_record(request: Request, result: dict, llm: str, issues: list[str]) -> dict:
    system, user = request.messages()
    record = {"id": request.id, "kind": request.kind, "group": request.group, "source": request.source,
              "conversations": [{"from": "system", "value": system["content"]},
                                {"from": "human", "value": user["content"]},
                                {"from": "gpt", "value": result["answer"]}],
              "teacher": {"llm": llm, **(result["teacher"] or {})}}
    if request.group != "train":
        record["teacher_issues"] = issues
    return record


def _load_cache(path: Path) -> dict:
    if not path.is_file():
        return {}
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return {r["key"]: r for r in rows}


def make_dataset(out: str | Path, n_train: int, n_eval: int, seed: int = 0, *, teacher=None, llm: str = "embedded",
                 backend: str = "auto", budget_s: float | None = None, progress: bool = False, scans=None,
                 threads: int = 0) -> dict:
    """Answer every request (cached), then write the splits; returns the manifest (``"done": False`` when
    ``budget_s`` ran out first: run again to go on)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train, held = build_requests(n_train, n_eval, seed, scans=scans)
    teacher = teacher or Teacher(llm, backend, threads=threads)
    cache_path = out / "teacher_cache.jsonl"
    cache = _load_cache(cache_path)
    t0, fresh = time.perf_counter(), 0
    todo = [r for r in train + held if teacher.key(r) not in cache]
    with open(cache_path, "a") as f:
        for i, req in enumerate(todo, 1):
            row = {"key": teacher.key(req), "id": req.id, **teacher.answer(req)}
            cache[row["key"]] = row
            f.write(json.dumps(row) + "\n")
            f.flush()
            fresh += 1
            if progress and i % 10 == 0:
                print(f"teacher: {i}/{len(todo)} answered ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
            if budget_s is not None and time.perf_counter() - t0 > budget_s:
                break  # at least one answer per run, so every run makes progress
    missing = sum(teacher.key(r) not in cache for r in train + held)
    if missing:
        return {"done": False, "answered_now": fresh, "missing": missing, "seconds": round(time.perf_counter() - t0)}
    records = {"train": [], "eval": []}
    dropped: list[dict] = []
    for split, requests in (("train", train), ("eval", held)):
        for req in requests:
            result = cache[teacher.key(req)]
            issues = verdict(req, result["answer"])
            if split == "train" and issues:
                dropped.append({"id": req.id, "kind": req.kind, "answer": result["answer"], "why": issues})
                continue
            if split == "eval" and not result["answer"]:
                continue  # nothing to compare with
            records[split].append(to_record(req, result, teacher.llm, issues))
    (out / "dropped.jsonl").write_text("".join(json.dumps(d) + "\n" for d in dropped))
    if not records["train"]:
        raise MedAnyError(f"The teacher kept to the evidence in none of its {len(train)} training answers; "
                          "nothing to distil (see the grounding check's reasons in dropped.jsonl).")
    write_split(out / "train.jsonl", records["train"])
    write_split(out / "eval.jsonl", records["eval"])
    rows = [cache[teacher.key(r)] for r in train + held]
    tokens, seconds = sum(r["new_tokens"] for r in rows), sum(r["gen_s"] for r in rows)
    manifest = {
        "generator": "recipes.distill_llm.teacher", "seed": seed, "teacher": teacher.llm,
        "backend": teacher.backend.describe(), "max_new_tokens": teacher.settings.max_new_tokens,
        "repetition_penalty": teacher.settings.repetition_penalty, "top_k": teacher.top_k,
        "requests": {"train": len(train), "eval": len(held)},
        "records": {k: len(v) for k, v in records.items()},
        "dropped_train": {"total": len(dropped), "speech": sum(d["kind"] == "speech" for d in dropped),
                          "image": sum(d["kind"] == "image" for d in dropped)},
        "eval_teacher_flagged": sum(bool(r["teacher_issues"]) for r in records["eval"]),
        "eval_groups": {g: sum(r["group"] == g for r in records["eval"]) for g in sorted({r["group"] for r in
                                                                                           records["eval"]})},
        "teacher_tokens_per_s": round(tokens / max(seconds, 1e-9), 2), "teacher_mean_new_tokens":
            round(tokens / max(len(rows), 1), 1), "done": True,
    }
    write_manifest(out, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.distill_llm.teacher", description=__doc__.split("\n")[0])
    parser.add_argument("out", help="folder for train.jsonl, eval.jsonl, manifest.json and the answer cache")
    parser.add_argument("--n-train", type=int, default=240, help="training requests (half speech, half image)")
    parser.add_argument("--n-eval", type=int, default=48, help="held-out requests, a quarter per group")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--llm", default="embedded", help="the teacher LLM (default: the 1.5B default)")
    parser.add_argument("--backend", default="auto", choices=["auto", "llamacpp", "transformers"])
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: every core)")
    parser.add_argument("--budget-s", type=float, help="stop answering after this many seconds (run again to go on)")
    args = parser.parse_args(argv)
    try:
        manifest = make_dataset(args.out, args.n_train, args.n_eval, args.seed, llm=args.llm, backend=args.backend,
                                budget_s=args.budget_s, progress=True, threads=args.threads)
    except MedAnyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
