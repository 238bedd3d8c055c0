"""Quantization with its quality measured: the LLM and the vision encoder in each form, side by side, on this CPU.

Usage: python benchmarks/compression.py [--llm embedded-small|embedded] [--configs fp32,bf16,...] [--threads 1,2]
       [--scans DIR] [--heavy-lock /tmp/medany-heavy.lock] [--json FILE]

LLM forms (:mod:`multimodal.quantize`): ``fp32`` (the GGUF de-quantized by transformers: the reference),
``bf16``, ``int8-weight`` and ``int8-dynamic`` (torchao) on the transformers backend; ``gguf`` (the
shipped GGUF as is) and ``gguf-q8_0`` / ``gguf-q4_0`` (re-quantized by llama.cpp) on the llama.cpp backend.
Each runs in a fresh process (so its peak RSS is its own) and reports:

- weights: bytes of the weights in memory (torch) or of the GGUF file (llama.cpp);
- peak RSS of the process after loading and generating (before the quality pass, whose full-vocabulary
  logits are not what a user's process holds);
- TTFT (prompt of the fixed chat request, about 60 tokens, to the first new token) and decode tok/s
  (greedy, ``--new-tokens``), at each of ``--threads``, KV cache emptied before each run;
- perplexity of ``benchmarks/heldout_medical.txt`` (our own text, about 2,000 tokens, in windows of
  ``--window``) and the mean KL divergence KL(fp32 || form) over the same positions, from full
  distributions (the fp32 run writes its log-probabilities to a scratch file the others read);
- greedy identity: the share of the fixed prompts whose ``--greedy-tokens`` greedy tokens equal fp32's
  (and the mean length of the common prefix).

Encoder forms: ``torch-fp32`` (the default), ``onnx-fp32`` and ``onnx-int8`` (ONNX Runtime; int8 static
QDQ calibrated on the bundled training-group scans): size, ms per image at each thread count, feature cosine
to torch fp32 and top-1 agreement of the ImageNet head on real scans and photos, and, with ``--scans DIR``
(``python -m recipes.image.make_data DIR --n-train 1``), the shipped projector's held-out field accuracy
through the pipeline (:func:`benchmarks.projector_effect.score`) with each encoder.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
TEXT = Path(__file__).with_name("heldout_medical.txt")
TORCH_CONFIGS = ("fp32", "bf16", "int8-weight", "int8-dynamic")
DEFAULT_CONFIGS = TORCH_CONFIGS + ("gguf", "gguf-q8_0", "gguf-q4_0")
ENCODER_CONFIGS = ("torch-fp32", "onnx-fp32", "onnx-int8")
TIMED = "What is a normal resting heart rate for an adult, and when should a fast heart rate worry me?"
PROMPTS = (
    "What are the first-line drugs for high blood pressure?",
    "Explain what a glycated haemoglobin test measures.",
    "List three signs of a severe asthma attack.",
    "What does consolidation on a chest X-ray mean?",
    "How is community-acquired pneumonia treated at home?",
    "Why is methotrexate for arthritis taken once a week?",
    "What should a patient do if they feel a hypoglycaemic episode starting?",
    "Name two drugs that interact with warfarin.",
)
# Real pictures for the encoder's agreement check: scans of the image recipe's held-out source groups
# (never used for calibration) and other pydicom scans, plus the meal photo.
AGREEMENT_IMAGES = tuple(f"sample:{n}" for n in (
    "MR_small.dcm", "color-pl.dcm", "mlut_18.dcm", "RG3_J2KI.dcm", "examples_overlay.dcm",
    "gdcm-US-ALOKA-16.dcm", "image_dfl.dcm", "693_J2KI.dcm", "RG1_UNCR.dcm", "CT_small.dcm", "fruits.jpg"))


# -- the quality math -------------------------------------------------------------------------


def window_quality(logits: torch.Tensor, ids: torch.Tensor, ref_logprobs: torch.Tensor | None = None,
                   rows: int = 128):
    """``(nll [L-1], kl [L-1] or None, logprobs [L-1, V])`` of one window: ``logits`` ``[L, V]`` at each position
    of ``ids`` ``[L]``; position t predicts ``ids[t+1]``. KL is KL(ref || this) per position, ``ref_logprobs``
    ``[L-1, V]``. Computed ``rows`` positions at a time (a 152k vocabulary makes each row 0.6 MB)."""
    nll, kl, out = [], [], []
    for s in range(0, len(ids) - 1, rows):
        lp = torch.log_softmax(logits[s:min(s + rows, len(ids) - 1)].float(), dim=-1)  # [r, V]
        nll.append(-lp.gather(-1, ids[s + 1:s + 1 + len(lp)].reshape(-1, 1).long()).squeeze(-1))  # [r]
        if ref_logprobs is not None:
            ref = ref_logprobs[s:s + len(lp)].float()  # [r, V]
            kl.append((ref.exp() * (ref - lp)).sum(-1))  # [r]
        out.append(lp)
    return torch.cat(nll), (torch.cat(kl) if ref_logprobs is not None else None), torch.cat(out)


def perplexity(nll: torch.Tensor) -> float:
    return float(torch.exp(nll.double().mean()))


def greedy_identity(reference: list[list[int]], answers: list[list[int]]) -> tuple[float, float]:
    """``(share of answers equal to the reference, mean common-prefix length)``."""
    same = sum(a == r for a, r in zip(answers, reference)) / max(len(reference), 1)
    prefix = []
    for a, r in zip(answers, reference):
        n = 0
        while n < min(len(a), len(r)) and a[n] == r[n]:
            n += 1
        prefix.append(n)
    return same, float(np.mean(prefix)) if prefix else 0.0


def cpu_flags() -> list[str]:
    """The SIMD flags that decide which kernels run: AVX2, AVX-512 (F, VNNI, BF16), AVX-VNNI, AMX."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
    return [f for f in wanted if f in flags]


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    return f"{os.cpu_count()} cores {model}; {', '.join(cpu_flags()) or 'no AVX2'}"


# -- one child process per form -------------------------------------------------------------


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # MiB
    return 0.0


def _weight_bytes(model: torch.nn.Module) -> int:
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        inner = t.__tensor_flatten__()[0] if hasattr(t, "__tensor_flatten__") else None
        total += sum(getattr(t, n).numel() * getattr(t, n).element_size() for n in inner) if inner else \
            t.numel() * t.element_size()
    return total


def _backend(config: str, llm: str, work: Path, threads: int):
    """``(backend, weight bytes)`` of one form."""
    from multimodal.backbone import load_gguf_tokenizer, load_llm, resolve_gguf

    if config in TORCH_CONFIGS:
        from multimodal.backends.hf import TransformersBackend
        from multimodal.model import MedAnyModel

        if config == "fp32":
            model, tok, _ = load_llm(llm)
        else:  # the folder `medany quantize` wrote (prepare): what a user loads
            model, tok, _ = load_llm(str(work / f"llm-{config}"),
                                     dtype=torch.bfloat16 if config == "bf16" else torch.float32)
        return TransformersBackend(MedAnyModel(model, tok, {}, {}).eval()), _weight_bytes(model)
    from multimodal.backends.llamacpp import LlamaCppBackend

    gguf = resolve_gguf(llm) if config == "gguf" else work / f"{config}.gguf"
    return LlamaCppBackend(gguf, load_gguf_tokenizer(resolve_gguf(llm)), n_ctx=2048, threads=threads), \
        gguf.stat().st_size


def _set_threads(backend, n: int) -> None:
    torch.set_num_threads(n)
    lib = getattr(backend, "lib", None)
    if lib is not None:
        lib.llama_set_n_threads(backend.llama.ctx, n, n)


def _forget_cache(backend) -> None:
    cached = getattr(backend, "_cached", None)  # llama.cpp reuses a cached prompt prefix: time a cold prompt
    if cached is not None:
        cached.clear()


def _chat_ids(tokenizer, question: str) -> torch.Tensor:
    text = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                         add_generation_prompt=True)
    return torch.tensor(tokenizer(text, add_special_tokens=False).input_ids)


def _timed(backend, ids: torch.Tensor, new_tokens: int) -> tuple[float, float]:
    """``(seconds to the first token, decode tokens / s)`` of a greedy answer."""
    from multimodal.backends import GenerationSettings

    _forget_cache(backend)
    settings = GenerationSettings(max_new_tokens=new_tokens, repetition_penalty=1.0)
    t0 = time.perf_counter()
    stamps = [time.perf_counter() for _ in backend.generate_ids(ids, {}, settings)]
    if not stamps:
        return float("nan"), float("nan")
    decode = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
    return stamps[0] - t0, decode


def run_llm_child(config: str, args) -> dict:
    from multimodal.backends import GenerationSettings

    work = Path(args.workdir)
    threads = [int(t) for t in args.threads.split(",")]
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # peak RSS from here: the loading and generation of this form
    base = _status("VmRSS")
    t0 = time.perf_counter()
    backend, weights = _backend(config, args.llm, work, max(threads))
    load_s = time.perf_counter() - t0
    tok = backend.tokenizer
    timed_ids = _chat_ids(tok, TIMED)
    _set_threads(backend, max(threads))
    _timed(backend, timed_ids, 2)  # warm-up: first-call allocations and kernel choice are not the steady state
    speed = {}
    for n in threads:  # best of --repeats: other processes on a shared machine only ever slow a run down
        _set_threads(backend, n)
        runs = [_timed(backend, timed_ids, args.new_tokens) for _ in range(args.repeats)]
        speed[n] = {"ttft_s": min(r[0] for r in runs), "decode_tok_s": max(r[1] for r in runs)}
    _set_threads(backend, max(threads))
    greedy = GenerationSettings(max_new_tokens=args.greedy_tokens, repetition_penalty=1.0)
    answers = []
    for q in PROMPTS:
        _forget_cache(backend)
        answers.append(list(backend.generate_ids(_chat_ids(tok, q), {}, greedy)))
    peak = _status("VmHWM")
    # quality: perplexity and KL on the held-out text
    ids = torch.tensor(np.load(work / "text_ids.npy"))
    windows = [ids[i:i + args.window] for i in range(0, len(ids) - 1, args.window)]
    windows = [w for w in windows if len(w) > 1]
    ref_path = work / "ref_logprobs.f32"
    nlls, kls = [], []
    offset = 0
    for w in windows:
        logits = backend.sequence_logits(w)  # [L, V]
        n, vocab = len(w) - 1, logits.shape[-1]
        if config == "fp32":
            nll, _, lp = window_quality(logits, w)
            with open(ref_path, "ab") as f:  # [positions, V] float32, appended window by window
                f.write(lp.numpy().tobytes())
        else:
            total = ref_path.stat().st_size // (4 * vocab)
            ref = np.memmap(ref_path, dtype=np.float32, mode="r", shape=(total, vocab))
            nll, kl, _ = window_quality(logits, w, torch.from_numpy(np.array(ref[offset:offset + n])))
            kls.append(kl)
            del ref
        nlls.append(nll)
        offset += n
    nll = torch.cat(nlls)
    return {"config": config, "backend": backend.describe(), "weights_bytes": weights, "load_s": load_s,
            "base_rss_mb": base, "peak_rss_mb": peak, "speed": speed, "answers": answers,
            "perplexity": perplexity(nll), "tokens": int(nll.numel()),
            "mean_kl": float(torch.cat(kls).mean()) if kls else 0.0}


def _encoder(config: str, work: Path):
    from encoders import create_encoder

    if config == "torch-fp32":
        return create_encoder("medany-lite0"), None
    folder = work / f"encoder-{config}"
    return create_encoder(f"onnx:{folder}"), folder


def run_encoder_child(config: str, args) -> dict:
    from multimodal.io import load_image

    work = Path(args.workdir)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    enc, folder = _encoder(config, work)
    size = (json.loads((folder / "medany_quantized.json").read_text())["bytes"] if folder else
            sum(p.numel() * p.element_size() for p in enc.parameters()))
    pixels = [enc.preprocess(load_image(ref).pixels)[None] for ref in AGREEMENT_IMAGES]  # N x [1, 3, S, S]
    speed = {}
    for n in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(n)
        with torch.no_grad():
            enc(pixels[0])
            best = float("inf")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                for x in pixels:
                    enc(x)
                best = min(best, time.perf_counter() - t0)
        speed[n] = best / len(pixels) * 1000
    with torch.no_grad():
        feats = torch.cat([enc(x) for x in pixels]).numpy()  # [N, T, D]
    top1 = [int(enc.class_probs(load_image(ref)).argmax()) for ref in AGREEMENT_IMAGES]
    np.save(work / f"features-{config}.npy", feats)
    out = {"config": config, "bytes": size, "ms_per_image": speed, "top1": top1, "peak_rss_mb": _status("VmHWM")}
    if args.scans:
        out["fields"] = _projector_accuracy(config, work, args)
    return out


def _projector_accuracy(config: str, work: Path, args) -> dict:
    """Held-out field accuracy of the shipped projector through the pipeline, this encoder feeding it."""
    from benchmarks.projector_effect import load_eval, score
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant

    rows = load_eval(Path(args.scans) / "eval.jsonl")
    for r in rows:
        r["question"] = r["question"].replace("<image>", "").strip()
    vision = "medany-lite0" if config == "torch-fp32" else f"onnx:{work / f'encoder-{config}'}"
    assistant = Assistant.load(StackConfig(llm=args.encoder_llm, vision=vision, speech="", knowledge="none",
                                           max_new_tokens=48, threads=max(int(t) for t in args.threads.split(","))))
    answers = [assistant.answer(r["question"], [r["image"]]) for r in rows]
    return {k: list(v) for k, v in score(rows, answers)["all"].items()}


# -- the parent: prepare, run each child, print the tables ------------------------------------------


def _child(kind: str, config: str, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), f"--{kind}-child", config] + args.passthrough
    if args.heavy_lock and not args.lock_whole_run:
        cmd = ["flock", args.heavy_lock] + cmd
    t0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if run.returncode != 0:
        tail = (run.stderr.strip().splitlines() or ["?"])[-1][:200]
        print(f"  {config}: failed ({tail})", file=sys.stderr)
        return {"config": config, "error": tail}
    print(f"  {config}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return json.loads(run.stdout.strip().splitlines()[-1])


def prepare(args) -> None:
    """The held-out text's token ids, and a fresh reference file."""
    from multimodal.backbone import load_gguf_tokenizer, resolve_gguf

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    tok = load_gguf_tokenizer(resolve_gguf(args.llm))
    np.save(work / "text_ids.npy", np.array(tok(TEXT.read_text(), add_special_tokens=False).input_ids))
    (work / "ref_logprobs.f32").unlink(missing_ok=True)


def make_form(args, config: str) -> Path | None:
    """Write the form ``config`` into the work folder the way a user would (``medany quantize``); returns what
    to delete after its run (None: nothing was written). Under the heavy lock: it loads the fp32 model."""
    from multimodal.backbone import resolve_gguf
    from multimodal.quantize import quantize, requantize_gguf

    work = Path(args.workdir)
    if config in ("fp32", "gguf", "torch-fp32"):
        return None  # nothing to write
    with _locked(None if args.lock_whole_run else args.heavy_lock):
        if config.startswith("gguf-"):
            requantize_gguf(resolve_gguf(args.llm), work / f"{config}.gguf", config.split("-", 1)[1], threads=2)
            return work / f"{config}.gguf"
        if config in TORCH_CONFIGS and config != "fp32":
            quantize(str(work / f"llm-{config}"), config, llm=args.llm)
            return work / f"llm-{config}"
        if config.startswith("onnx-"):
            from encoders.onnx_runtime import export_encoder
            from multimodal.quantize import CALIBRATION

            shutil.rmtree(work / f"encoder-{config}", ignore_errors=True)
            export_encoder("medany-lite0", work / f"encoder-{config}", config.split("-", 1)[1], CALIBRATION)
    return None


def run_form(kind: str, config: str, args) -> dict:
    made = make_form(args, config)
    try:
        return _child(kind, config, args)
    finally:
        if made is not None and kind == "llm" and not args.keep:  # the 1.5B's forms take gigabytes each
            shutil.rmtree(made) if made.is_dir() else made.unlink()


@contextlib.contextmanager
def _locked(path: str | None):
    if not path:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def llm_table(results: list[dict], threads: list[int]) -> str:
    ref = next((r for r in results if r["config"] == "fp32" and "error" not in r), None)
    head = ["form", "backend", "weights MB", "peak RSS MB"]
    head += [f"TTFT s ({n}t)" for n in threads] + [f"decode tok/s ({n}t)" for n in threads]
    head += ["perplexity", "mean KL to fp32", "greedy = fp32", "common prefix"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['config']} | failed: {r['error']} |")
            continue
        same, prefix = greedy_identity(ref["answers"], r["answers"]) if ref else (float("nan"),) * 2
        cells = [r["config"], r["backend"].split(" (")[0], _mb(r["weights_bytes"]), f"{r['peak_rss_mb']:,.0f}"]
        cells += [f"{r['speed'][str(n)]['ttft_s']:.2f}" for n in threads]
        cells += [f"{r['speed'][str(n)]['decode_tok_s']:.1f}" for n in threads]
        cells += [f"{r['perplexity']:.3f}", "0 (reference)" if r["config"] == "fp32" else f"{r['mean_kl']:.4f}",
                  f"{same * len(PROMPTS):.0f}/{len(PROMPTS)}", f"{prefix:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def encoder_table(results: list[dict], threads: list[int], work: Path) -> str:
    ref = next((r for r in results if r["config"] == "torch-fp32" and "error" not in r), None)
    ref_feats = np.load(work / "features-torch-fp32.npy") if ref else None
    fields = sorted({k for r in results for k in r.get("fields", {})})
    head = ["encoder", "size MB", "peak RSS MB"] + [f"ms / image ({n}t)" for n in threads]
    head += ["feature cosine to fp32 (mean / min)", "top-1 = fp32"] + [f"held-out {k}" for k in fields]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['config']} | failed: {r['error']} |")
            continue
        feats = np.load(work / f"features-{r['config']}.npy")
        cos = [float(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b)))
               for a, b in zip(feats, ref_feats)] if ref_feats is not None else [float("nan")]
        agree = sum(a == b for a, b in zip(r["top1"], ref["top1"])) if ref else 0
        cells = [r["config"], f"{r['bytes'] / 2**20:.1f}", f"{r['peak_rss_mb']:,.0f}"]
        cells += [f"{r['ms_per_image'][str(n)]:.1f}" for n in threads]
        cells += [f"{np.mean(cos):.3f} / {np.min(cos):.3f}", f"{agree}/{len(r['top1'])}"]
        cells += [f"{r['fields'][k][0]}/{r['fields'][k][1]}" if k in r.get("fields", {}) else "-" for k in fields]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="embedded-small", help="embedded-small (quick) or embedded (the 1.5B)")
    parser.add_argument("--configs", default=",".join(DEFAULT_CONFIGS), help="LLM forms, comma-separated ('' none)")
    parser.add_argument("--encoders", default=",".join(ENCODER_CONFIGS), help="encoder forms ('' none)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens generated for the decode speed")
    parser.add_argument("--greedy-tokens", type=int, default=24, help="greedy tokens compared per fixed prompt")
    parser.add_argument("--window", type=int, default=512, help="tokens per perplexity window")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per thread count; the best is reported")
    parser.add_argument("--scans", help="image recipe data folder (eval.jsonl): projector accuracy per encoder")
    parser.add_argument("--encoder-llm", default="embedded-small", help="the LLM answering the held-out scans")
    parser.add_argument("--workdir", default="out/compression")
    parser.add_argument("--heavy-lock", help="run each form under flock on this file (shared machines)")
    parser.add_argument("--lock-whole-run", action="store_true",
                        help="hold --heavy-lock for the whole run instead of form by form (a short run)")
    parser.add_argument("--json", help="write all results here")
    parser.add_argument("--keep", action="store_true", help="keep the written forms and the fp32 log-probabilities")
    parser.add_argument("--llm-child", help=argparse.SUPPRESS)
    parser.add_argument("--encoder-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.llm_child or args.encoder_child:
        from multimodal.cli import quiet_libraries

        quiet_libraries()
        result = run_llm_child(args.llm_child, args) if args.llm_child else run_encoder_child(args.encoder_child, args)
        kind = "llm" if args.llm_child else "encoder"
        (Path(args.workdir) / f"result-{kind}-{result['config']}.json").write_text(json.dumps(result))  # kept
        print(json.dumps(result))
        return 0
    configs = [c for c in args.configs.split(",") if c]
    if "fp32" in configs:
        configs = ["fp32"] + [c for c in configs if c != "fp32"]  # the reference first
    encoders = [c for c in args.encoders.split(",") if c]
    threads = [int(t) for t in args.threads.split(",")]
    args.passthrough = [a for k, v in (("--llm", args.llm), ("--threads", args.threads),
                                       ("--new-tokens", args.new_tokens), ("--greedy-tokens", args.greedy_tokens),
                                       ("--window", args.window), ("--repeats", args.repeats),
                                       ("--workdir", args.workdir), ("--encoder-llm", args.encoder_llm),
                                       ("--scans", args.scans)) if v
                        for a in (k, str(v))]
    print(f"Machine: {machine()}; torch {torch.__version__}, {args.llm}", file=sys.stderr)
    t0 = time.perf_counter()
    with _locked(args.heavy_lock if args.lock_whole_run else None):
        prepare(args)
        llm_results = [run_form("llm", c, args) for c in configs]
        if not args.keep:
            (Path(args.workdir) / "ref_logprobs.f32").unlink(missing_ok=True)
        enc_results = [run_form("encoder", c, args) for c in encoders]
    print(f"Machine: {machine()}. LLM {args.llm}; greedy, {args.new_tokens} new tokens timed (best of "
          f"{args.repeats}); "
          f"{llm_results[0].get('tokens', '?') if llm_results else '-'} held-out tokens scored; "
          f"{len(PROMPTS)} fixed prompts x {args.greedy_tokens} greedy tokens. "
          f"Total {time.perf_counter() - t0:.0f} s.\n")
    if llm_results:
        print(llm_table(llm_results, threads) + "\n")
    if enc_results:
        print(encoder_table(enc_results, threads, Path(args.workdir)) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "llm": args.llm, "llm_results": llm_results,
                                               "encoder_results": enc_results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
