"""Benchmark attention with the image-span mask: our Triton kernel vs SDPA vs FlexAttention.

Usage::

    python benchmarks/attention.py                 # CUDA if present, else a small CPU run
    python benchmarks/attention.py --lengths 8192 --head-dims 128 --images 4
    python benchmarks/attention.py --markdown      # table for docs/attention.md

Methods (CUDA): ``triton`` (ours, causal_spans), ``sdpa_mask`` (SDPA with the dense
boolean mask), ``flex`` (compiled FlexAttention with the same mask_mod and a block mask),
``sdpa_causal`` (SDPA is_causal=True: the flash-attention floor, a different and smaller
mask). On CPU only the CPU paths run: ``sdpa_mask`` (what the dispatcher uses on CPU) and
``sdpa_causal``.

Work counts only allowed (query, key) pairs of each method's own mask: forward
4·B·Hq·D·pairs FLOPs, backward 2.5x that (the flash-attention convention). Memory is the
peak CUDA allocation above the inputs during one forward+backward.

Letters: B batch, Hq/Hkv heads, L tokens, D head dim.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from multimodal.kernels.masks import dense_mask

IMAGE_SIZES = (256, 576, 1024, 729)  # tokens per image: CLIP 224/336, 32x32, SigLIP 384


def image_layout(L: int, n_images: int) -> torch.Tensor:
    """``Long[L]`` span ids: ``n_images`` images spread evenly through the text."""
    span = torch.zeros(L, dtype=torch.long)
    sizes = [IMAGE_SIZES[i % len(IMAGE_SIZES)] for i in range(n_images)]
    while sum(sizes) > L * 3 // 4:  # keep a quarter of the sequence text
        sizes = [max(s // 2, 16) for s in sizes]
    gap = (L - sum(sizes)) // (n_images + 1)
    pos = gap
    for i, size in enumerate(sizes, start=1):
        span[pos:pos + size] = i
        pos += size + gap
    return span


def allowed_pairs(span: torch.Tensor) -> int:
    """Allowed (q, k) pairs of the causal_spans mask for one sequence."""
    L = span.numel()
    causal = L * (L + 1) // 2
    extra = 0
    for i in span.unique().tolist():
        if i:
            n = int((span == i).sum())
            extra += n * (n - 1) // 2  # the upper triangle inside the span
    return causal + extra


def timed(fn, device: str, reps: int) -> float:
    """Median milliseconds of ``fn()``."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def build_methods(span_b: torch.Tensor, Hq: int, Hkv: int, L: int, device: str):
    """name -> (callable(q, k, v) -> out, allowed pairs per sequence)."""
    pairs_spans = allowed_pairs(span_b[0].cpu())
    pairs_causal = L * (L + 1) // 2
    gqa = {"enable_gqa": True} if Hq != Hkv else {}
    mask = dense_mask("causal_spans", span_b, span_b, L, L)  # [B, 1, L, L]
    methods = {
        "sdpa_mask": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **gqa), pairs_spans),
        "sdpa_causal": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, **gqa),
                        pairs_causal),
    }
    if device == "cuda":
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        from multimodal.kernels.triton_attention import flash_attention

        methods = {"triton": (lambda q, k, v: flash_attention(q, k, v, mask_kind="causal_spans", span_ids=span_b),
                              pairs_spans), **methods}

        def mask_mod(b, h, q_idx, kv_idx):
            same = (span_b[b, q_idx] == span_b[b, kv_idx]) & (span_b[b, q_idx] != 0)
            return (kv_idx <= q_idx) | same

        block_mask = create_block_mask(mask_mod, span_b.shape[0], None, L, L, device=device)
        flex = torch.compile(flex_attention, dynamic=False)
        methods["flex"] = (lambda q, k, v: flex(q, k, v, block_mask=block_mask, enable_gqa=Hq != Hkv), pairs_spans)
    return methods


def run(args) -> list[dict]:
    device = args.device
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    rows = []
    for D in args.head_dims:
        Hq = max(args.hidden // D, 1)
        Hkv = max(Hq // args.gqa, 1)
        for L in args.lengths:
            B = max(args.tokens // L, 1)
            for n_img in args.images:
                span_b = image_layout(L, n_img).to(device).expand(B, L).contiguous()  # [B, L]
                g = torch.Generator(device=device).manual_seed(0)
                q = torch.randn(B, Hq, L, D, device=device, dtype=dtype, generator=g)
                k = torch.randn(B, Hkv, L, D, device=device, dtype=dtype, generator=g)
                v = torch.randn(B, Hkv, L, D, device=device, dtype=dtype, generator=g)
                for name, (fn, pairs) in build_methods(span_b, Hq, Hkv, L, device).items():
                    if name == "sdpa_causal" and n_img != args.images[0]:
                        continue  # independent of the images: measure once per (L, D)
                    flops = 4.0 * B * Hq * D * pairs
                    row = dict(method=name, L=L, D=D, B=B, Hq=Hq, Hkv=Hkv, images=n_img)
                    try:
                        with torch.no_grad():
                            row["fwd_ms"] = timed(lambda fn=fn, q=q, k=k, v=v: fn(q, k, v), device, args.reps)
                        qg, kg, vg = (t.detach().requires_grad_() for t in (q, k, v))
                        do = torch.randn_like(q)

                        def fwd_bwd(fn=fn, qg=qg, kg=kg, vg=vg, do=do):
                            out = fn(qg, kg, vg)
                            torch.autograd.grad(out, (qg, kg, vg), do)

                        row["fwdbwd_ms"] = timed(fwd_bwd, device, args.reps)
                        row["fwd_tflops"] = flops / row["fwd_ms"] / 1e9
                        row["fwdbwd_tflops"] = 3.5 * flops / row["fwdbwd_ms"] / 1e9
                        if device == "cuda":
                            torch.cuda.synchronize()
                            base = torch.cuda.memory_allocated()
                            torch.cuda.reset_peak_memory_stats()
                            fwd_bwd()
                            torch.cuda.synchronize()
                            row["peak_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
                    except Exception as exc:  # e.g. out of memory for the dense mask
                        row["error"] = type(exc).__name__
                        if device == "cuda":
                            torch.cuda.empty_cache()
                    rows.append(row)
                    print(fmt_row(row, args.markdown), flush=True)
    return rows


HEADER = ["method", "L", "D", "B", "imgs", "fwd ms", "fwd TFLOP/s", "fwd+bwd ms", "fwd+bwd TFLOP/s", "peak MiB"]


def fmt_row(r: dict, markdown: bool) -> str:
    def num(key, f="{:.2f}"):
        return f.format(r[key]) if key in r else r.get("error", "-")

    cells = [r["method"], str(r["L"]), str(r["D"]), str(r["B"]), str(r["images"]), num("fwd_ms"),
             num("fwd_tflops", "{:.3g}"), num("fwdbwd_ms"), num("fwdbwd_tflops", "{:.3g}"), num("peak_mib", "{:.0f}")]
    if markdown:
        return "| " + " | ".join(cells) + " |"
    return "".join(c.rjust(w) for c, w in zip(cells, (12, 7, 5, 4, 6, 10, 13, 12, 17, 10)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cuda = torch.cuda.is_available()
    p.add_argument("--device", default="cuda" if cuda else "cpu")
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384] if cuda else [512, 1024])
    p.add_argument("--head-dims", type=int, nargs="+", default=[64, 128])
    p.add_argument("--images", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--dtype", default="bf16" if cuda else "fp32", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--hidden", type=int, default=2048 if cuda else 256, help="Hq = hidden // D")
    p.add_argument("--gqa", type=int, default=4, help="query heads per KV head")
    p.add_argument("--tokens", type=int, default=16384 if cuda else 1024, help="B = tokens // L")
    p.add_argument("--reps", type=int, default=10 if cuda else 3)
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"# device: {name}, torch {torch.__version__}, dtype {args.dtype}")
    if args.markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "---|" * len(HEADER))
    else:
        print("".join(c.rjust(w) for c, w in zip(HEADER, (12, 7, 5, 4, 6, 10, 13, 12, 17, 10))))
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
