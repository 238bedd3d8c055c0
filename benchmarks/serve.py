"""Throughput and latency of the OpenAI-compatible API (``medany serve``) on this machine.

Starts the server on a free loopback port (in this process, in a thread),
then sends ``--requests`` chat completions per prompt kind from
``--concurrency`` client threads and prints a Markdown table of requests/s
and p50/p95 latency. Prompts: text only, and an image (the sample DICOM
chest film ``RG1_UNCR.dcm``, 7 MB, sent as an ``application/dicom`` data URL).
One model answers one request at a time (the queue is FIFO), so concurrency
shows queueing, overlap of request parsing and DICOM decoding with
generation, and HTTP overhead, not parallel generation.

    python benchmarks/serve.py [--concurrency 1,4] [--requests 16] [--max-tokens 32]
    python benchmarks/serve.py --tiny        # tiny random models: checks the harness, not the machine
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from pipeline import _cpu_name  # benchmarks/pipeline.py

TINY = dict(llm="tiny-random", vision="tiny_vit", speech="tiny_whisper")


def prompts() -> dict[str, list]:
    from multimodal.samples import resolve_sample

    with open(resolve_sample("sample:RG1_UNCR.dcm"), "rb") as fh:
        film = base64.b64encode(fh.read()).decode()
    return {
        "text": [{"type": "text", "text": "What are common causes of a persistent dry cough?"}],
        "image (DICOM CR chest, 7 MB)": [
            {"type": "text", "text": "What does this study show?"},
            {"type": "image_url", "image_url": {"url": f"data:application/dicom;base64,{film}"}},
        ],
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (an observed latency, no interpolation)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def run(url: str, content: list, requests: int, concurrency: int, max_tokens: int) -> dict:
    import httpx

    body = {"model": "medany", "max_tokens": max_tokens, "messages": [{"role": "user", "content": content}]}
    local = threading.local()

    def one(_) -> tuple[float, int, int]:
        client = getattr(local, "client", None) or httpx.Client(base_url=url, timeout=600)
        local.client = client
        t0 = time.perf_counter()
        r = client.post("/v1/chat/completions", json=body)
        tokens = r.json().get("usage", {}).get("completion_tokens", 0) if r.status_code == 200 else 0
        return time.perf_counter() - t0, r.status_code, tokens

    one(0)  # warm-up: first-call costs (lazy imports, caches) are not the server's steady state
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - t0
    latencies = [lat for lat, status, _ in results if status == 200]
    return {
        "rps": requests / wall,
        "p50": percentile(latencies, 50) if latencies else float("nan"),
        "p95": percentile(latencies, 95) if latencies else float("nan"),
        "errors": sum(status != 200 for _, status, _ in results),
        "tokens": statistics.mean(t for _, _, t in results),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random models instead of the embedded stack")
    parser.add_argument("--concurrency", default="1,4", help="comma-separated client counts")
    parser.add_argument("--requests", type=int, default=16, help="requests per prompt kind and concurrency")
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args(argv)

    from multimodal.cli import quiet_libraries
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant
    from multimodal.serve import ServeSettings, build_app, launch

    quiet_libraries()
    levels = [int(c) for c in args.concurrency.split(",")]
    config = StackConfig(**TINY) if args.tiny else StackConfig()
    assistant = Assistant.load(config)
    settings = ServeSettings(port=0, queue_size=max(16, max(levels) * 2), request_timeout_s=600)
    server = launch(build_app(assistant, settings), settings, block=False)
    rows = []
    try:
        for name, content in prompts().items():
            for c in levels:
                rows.append((name, c, run(server.url, content, args.requests, c, args.max_tokens)))
    finally:
        server.close()

    stack = ("tiny random models (--tiny)" if args.tiny
             else "embedded stack (SmolLM2-135M, EfficientNet-Lite0, Whisper tiny.en)")
    print(f"Machine: {os.cpu_count()} CPU cores ({_cpu_name()}), no GPU, torch fp32; {stack}; "
          f"max_tokens {args.max_tokens}, {args.requests} requests per row, server and clients in one process\n")
    print("| prompt | concurrency | requests/s | p50 latency | p95 latency | mean new tokens | errors |")
    print("|---|---|---|---|---|---|---|")
    for name, c, r in rows:
        print(f"| {name} | {c} | {r['rps']:.2f} | {r['p50']:.3f} s | {r['p95']:.3f} s | {r['tokens']:.1f} | "
              f"{r['errors']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
