"""The Triton kernel *compiled* on CUDA (bf16 / fp16, autotuned tiles) against the reference.

Skipped without a CUDA device or under the Triton interpreter (the CPU suite runs
``test_triton_attention.py`` instead). ``benchmarks/gpu_check.sh`` runs this file with
``TRITON_INTERPRET=0`` on a lent GPU machine. The reference runs in float64 on the same
(rounded) inputs, so the tolerances measure the kernel's own error: bf16 keeps 8 bits of
mantissa (relative error ~4e-3 per element), accumulation is fp32.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1":
    pytest.skip("needs a CUDA device and the compiled kernel (TRITON_INTERPRET=0)", allow_module_level=True)
pytest.importorskip("triton")

from multimodal.kernels.reference import reference_attention  # noqa: E402
from multimodal.kernels.triton_attention import flash_attention  # noqa: E402

TOL = {torch.bfloat16: (2e-2, 3e-2), torch.float16: (4e-3, 8e-3)}  # (output atol, gradient rtol-scaled atol)


def image_spans(B: int, L: int, runs: list[tuple[int, int]]) -> torch.Tensor:
    s = torch.zeros(B, L, dtype=torch.long, device="cuda")
    for i, (a, b) in enumerate(runs, start=1):
        s[:, a:b] = i
    return s


def inputs(B, Hq, Hkv, Lq, Lk, D, dtype, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    q, k, v = (torch.randn(B, h, n, D, generator=g, device="cuda", dtype=dtype).requires_grad_()
               for h, n in ((Hq, Lq), (Hkv, Lk), (Hkv, Lk)))
    do = torch.randn(B, Hq, Lq, D, generator=g, device="cuda", dtype=dtype)
    return q, k, v, do


def compare(q, k, v, do, **kw):
    """Kernel output and gradients within the dtype's tolerance of the float64 reference."""
    out = flash_attention(q, k, v, **kw)
    grads = torch.autograd.grad(out, (q, k, v), do)
    ref_in = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref = reference_attention(*ref_in, **kw)
    ref_grads = torch.autograd.grad(ref, ref_in, do.double())
    out_atol, grad_tol = TOL[q.dtype]
    assert out.dtype == q.dtype and torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), ref, atol=out_atol, rtol=0)
    for name, a, b in zip("qkv", grads, ref_grads):
        assert torch.isfinite(a).all(), f"d{name} has NaN/inf"
        scale = b.abs().max().item()
        err = (a.double() - b).abs().max().item()
        assert err <= grad_tol * max(scale, 1.0), f"d{name}: max error {err:.3g} vs scale {scale:.3g}"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("D", [64, 128])
def test_image_spans_long_sequence(dtype, D):
    L = 2048
    spans = image_spans(2, L, [(100, 356), (900, 1476)])  # a 256- and a 576-token image
    compare(*inputs(2, 8, 2, L, L, D, dtype, seed=D), mask_kind="causal_spans", span_ids=spans)


@pytest.mark.parametrize("mask_kind", ["causal", "full"])
def test_plain_masks_bf16(mask_kind):
    compare(*inputs(1, 8, 8, 1024, 1024, 128, torch.bfloat16, seed=1), mask_kind=mask_kind)


def test_ragged_lengths_and_padding_bf16():
    L = 1000  # not a multiple of any tile
    pad = torch.ones(2, L, dtype=torch.bool, device="cuda")
    pad[1, :37] = False  # left padding
    spans = image_spans(2, L, [(50, 300)])
    compare(*inputs(2, 4, 1, L, L, 80, torch.bfloat16, seed=2), mask_kind="causal_spans", span_ids=spans,
            kv_padding=pad)


def test_decoding_and_packed_sequences_bf16():
    spans = image_spans(1, 777, [(10, 600)])
    compare(*inputs(1, 8, 2, 3, 777, 128, torch.bfloat16, seed=3), mask_kind="causal_spans", span_ids=spans)
    cu = torch.tensor([0, 300, 1100, 1536], dtype=torch.int32, device="cuda")
    packed = torch.zeros(1, 1536, dtype=torch.long, device="cuda")
    packed[0, 20:276] = 1
    packed[0, 400:976] = 1  # same id in the next sequence: must not attend across
    compare(*inputs(1, 8, 2, 1536, 1536, 128, torch.bfloat16, seed=4), mask_kind="causal_spans",
            span_ids=packed, cu_seqlens_q=cu, cu_seqlens_k=cu)
