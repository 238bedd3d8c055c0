"""End-to-end numbers for the embedded default stack on this machine.

Prints a Markdown table: first-start (empty cache: GGUF de-quantization and
Whisper conversion) and warm-start load times, then time to first token and
decode speed for a text, an image (DICOM chest film) and an audio (synthesized
consult) prompt, and peak resident memory. Each phase runs in a fresh process
so load times and memory are not flattered by an earlier phase.

    python benchmarks/pipeline.py [--max-new-tokens 64] [--skip-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_load() -> dict:
    from multimodal.pipeline import Assistant

    t0 = time.perf_counter()
    Assistant.load()
    return {"load_s": time.perf_counter() - t0, "peak_rss_mb": _peak_rss_mb()}


def phase_prompts(max_new_tokens: int) -> dict:
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant
    from multimodal.samples import consult_clip

    consult_clip()  # synthesize the sample outside the timed region
    t0 = time.perf_counter()
    assistant = Assistant.load(StackConfig(max_new_tokens=max_new_tokens))
    out = {"load_s": time.perf_counter() - t0, "prompts": {}}
    for name, (question, images, audios) in PROMPTS.items():
        assistant.answer(question, images, audios)
        t = assistant.last_timings
        out["prompts"][name] = {"ttft_s": t.first_token_s, "tok_s": t.tokens_per_s, "tokens": t.new_tokens,
                                "inputs_s": t.inputs_s, "tools_s": t.tools_s, "total_s": t.total_s}
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _run_phase(args: list[str], env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=["load", "prompts"], help=argparse.SUPPRESS)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--skip-cold", action="store_true", help="skip the empty-cache first start")
    args = parser.parse_args(argv)
    if args.phase == "load":
        print(json.dumps(phase_load()))
        return 0
    if args.phase == "prompts":
        print(json.dumps(phase_prompts(args.max_new_tokens)))
        return 0

    rows = []
    if not args.skip_cold:
        with tempfile.TemporaryDirectory() as cache:
            cold = _run_phase(["--phase", "load"], {"MEDANY_CACHE": cache})
        rows.append(("first start (empty cache)", f"{cold['load_s']:.1f} s", "", "", f"{cold['peak_rss_mb']:.0f}"))
    _run_phase(["--phase", "load"])  # make sure the default cache is warm
    warm = _run_phase(["--phase", "prompts", "--max-new-tokens", str(args.max_new_tokens)])
    rows.append(("warm start", f"{warm['load_s']:.1f} s", "", "", ""))
    for name, p in warm["prompts"].items():
        rows.append((f"{name} prompt", f"{p['inputs_s'] + p['tools_s']:.2f} s", f"{p['ttft_s']:.2f} s",
                     f"{p['tok_s']:.1f}", ""))
    rows.append(("peak memory, warm process", "", "", "", f"{warm['peak_rss_mb']:.0f}"))

    print(f"Machine: {os.cpu_count()} CPU cores ({_cpu_name()}), no GPU, torch fp32; "
          f"{args.max_new_tokens} new tokens max\n")
    print("| phase | load / preprocessing | time to first token | decode tokens/s | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
