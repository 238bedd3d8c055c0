"""End-to-end numbers for the embedded stacks on this machine, per LLM and inference backend.

Prints a Markdown table: for each embedded LLM on each backend (llama.cpp and
transformers), warm-start load time, time to first token and decode speed for
a text, an image (DICOM chest film) and an audio (synthesized consult) prompt
(each the median of ``--repeats`` answers, each after another question so only
the system prompt is cached), and peak resident memory. On llama.cpp, raw
``llama_cpp.Llama.create_chat_completion`` on the same GGUF answers the text
prompt in the same process, alternating with ours, and the table gives the
ratio of the two. A first start with an empty cache is measured for the default
stack. Each stack runs in a fresh process so load times and memory are not
flattered by an earlier one.

    python benchmarks/pipeline.py [--llm embedded --llm embedded-small] [--backend llamacpp] [--skip-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

PROMPTS = {
    "text": ("What are common causes of a persistent dry cough?", [], []),
    "image (DICOM CR chest)": ("What does this study show?", ["sample:RG1_UNCR.dcm"], []),
    "audio (consult clip)": ("What should the doctor ask next?", [], ["sample:consult"]),
}
LLMS = ("embedded", "embedded-0.5b", "embedded-small")
BACKENDS = ("llamacpp", "transformers")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _config(llm: str, backend: str, max_new_tokens: int = 64):
    from multimodal.config import StackConfig

    return StackConfig(llm=llm, backend=backend, max_new_tokens=max_new_tokens)


def phase_load(llm: str, backend: str) -> dict:
    from multimodal.pipeline import Assistant

    t0 = time.perf_counter()
    Assistant.load(_config(llm, backend))
    return {"load_s": time.perf_counter() - t0, "peak_rss_mb": _peak_rss_mb()}


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def phase_prompts(llm: str, backend: str, max_new_tokens: int, repeats: int) -> dict:
    from multimodal.pipeline import Assistant
    from multimodal.samples import consult_clip

    consult_clip()  # synthesize the sample outside the timed region
    t0 = time.perf_counter()
    assistant = Assistant.load(_config(llm, backend, max_new_tokens))
    out = {"load_s": time.perf_counter() - t0, "prompts": {}}
    for question, images, audios in PROMPTS.values():  # one untimed pass: every buffer allocated
        assistant.answer(question, images, audios, guard=False)
    out["peak_rss_mb"] = _peak_rss_mb()  # before the raw model shares the process
    raw = RawLlama(llm, max_new_tokens) if backend == "llamacpp" else None
    raw_runs = []
    for name, (question, images, audios) in PROMPTS.items():
        runs = []
        for _ in range(repeats):
            # Another question first, as for the raw runs: only the system prompt stays cached between answers.
            assistant.answer("Warm-up.", max_new_tokens=2, guard=False)
            runs.append(assistant.respond(question, images, audios, guard=False).timings)
            if raw is not None and name == "text":  # side by side, alternating, in one process
                raw_runs.append(raw.answer(question))
        out["prompts"][name] = {key: _median([getattr(t, attr) for t in runs]) for key, attr in (
            ("ttft_s", "first_token_s"), ("tok_s", "tokens_per_s"), ("tokens", "new_tokens"),
            ("inputs_s", "inputs_s"), ("tools_s", "tools_s"), ("total_s", "total_s"))}
    if raw_runs:
        out["raw"] = {"ttft_s": _median([r[0] for r in raw_runs]), "tok_s": _median([r[1] for r in raw_runs]),
                      "rss_mb": raw.rss_mb}
    return out


class RawLlama:
    """Raw llama-cpp-python on the same GGUF and messages: the ceiling our backend is measured against."""

    def __init__(self, llm: str, max_new_tokens: int):
        import llama_cpp

        from multimodal.backbone import resolve_gguf

        before = _rss_now_mb()
        self.llama = llama_cpp.Llama(model_path=str(resolve_gguf(llm)), n_ctx=4096, n_threads=os.cpu_count(),
                                     n_threads_batch=os.cpu_count(), use_mmap=False, verbose=False)  # as ours
        self.rss_mb = _rss_now_mb() - before
        self.max_new_tokens = max_new_tokens

    def answer(self, question: str) -> tuple[float, float]:
        """``(time to first token, decode tokens/s)`` of one greedy chat completion."""
        from multimodal.prompt import chat_messages

        # Warm up on another question, as our path does: both then reuse the cached system prompt, nothing more.
        self.llama.create_chat_completion(messages=chat_messages([], "Warm-up."), max_tokens=2, temperature=0.0)
        t0 = time.perf_counter()
        first, tokens = None, 0
        for chunk in self.llama.create_chat_completion(messages=chat_messages([], question), temperature=0.0,
                                                       max_tokens=self.max_new_tokens, repeat_penalty=1.0,
                                                       stream=True):
            if chunk["choices"][0]["delta"].get("content"):
                tokens += 1
                first = first or time.perf_counter()
        end = time.perf_counter()
        return first - t0, (tokens - 1) / (end - first) if tokens > 1 else 0.0


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _run_phase(args: list[str], env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise RuntimeError(f"phase {args} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=["load", "prompts"], help=argparse.SUPPRESS)
    parser.add_argument("--llm", action="append", help=f"embedded LLM(s) (default: {', '.join(LLMS)})")
    parser.add_argument("--backend", action="append", help=f"backend(s) (default: {', '.join(BACKENDS)})")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="answers per prompt (the median is shown)")
    parser.add_argument("--skip-cold", action="store_true", help="skip the empty-cache first start")
    args = parser.parse_args(argv)
    llms, backends = args.llm or list(LLMS), args.backend or list(BACKENDS)
    if args.phase:
        llm, backend = llms[0], backends[0]
        result = {"load": lambda: phase_load(llm, backend),
                  "prompts": lambda: phase_prompts(llm, backend, args.max_new_tokens, args.repeats)}[args.phase]()
        print(json.dumps(result))
        return 0

    common = ["--max-new-tokens", str(args.max_new_tokens), "--repeats", str(args.repeats)]
    rows, ratios = [], []
    if not args.skip_cold:
        with tempfile.TemporaryDirectory() as cache:
            cold = _run_phase(["--phase", "load", "--llm", llms[0], "--backend", backends[0]],
                              {"MEDANY_CACHE": cache})
        rows.append((llms[0], backends[0], "first start (empty cache)", f"{cold['load_s']:.1f} s", "", "",
                     f"{cold['peak_rss_mb']:.0f}"))
    for llm in llms:
        for backend in backends:
            pick = ["--llm", llm, "--backend", backend]
            _run_phase(["--phase", "load", *pick])  # the cache is warm for this stack
            warm = _run_phase(["--phase", "prompts", *pick, *common])
            rows.append((llm, backend, "warm start", f"{warm['load_s']:.1f} s", "", "", ""))
            for name, p in warm["prompts"].items():
                rows.append((llm, backend, f"{name} prompt", f"{p['inputs_s'] + p['tools_s']:.2f} s",
                             f"{p['ttft_s']:.2f} s", f"{p['tok_s']:.1f}", ""))
            rows.append((llm, backend, "peak memory, warm process", "", "", "", f"{warm['peak_rss_mb']:.0f}"))
            if backend == "llamacpp":
                raw, ours = warm["raw"], warm["prompts"]["text"]
                rows.append((llm, "raw llama-cpp-python", "text prompt (create_chat_completion)", "",
                             f"{raw['ttft_s']:.2f} s", f"{raw['tok_s']:.1f}", f"+{raw['rss_mb']:.0f}"))
                ratios.append((llm, ours["tok_s"] / raw["tok_s"] if raw["tok_s"] else 0.0,
                               raw["ttft_s"] / ours["ttft_s"] if ours["ttft_s"] else 0.0))

    from multimodal.machine import cpu

    print(f"Machine: {os.cpu_count()} CPU cores ({cpu()}), no GPU; llama.cpp built with AVX2/FMA/F16C, "
          f"AVX-512 off; transformers in fp32; {args.max_new_tokens} new tokens max, greedy; median of "
          f"{args.repeats} answers per prompt\n")
    print("| LLM | backend | phase | load / preprocessing | time to first token | decode tokens/s | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if ratios:
        print("\n| LLM | our llama.cpp decode speed / raw create_chat_completion | raw TTFT / our TTFT (text) |")
        print("|---|---|---|")
        for llm, speed, ttft in ratios:
            print(f"| {llm} | {speed:.2f} | {ttft:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
