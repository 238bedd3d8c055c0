"""The Triton kernel, run by the Triton interpreter on CPU, against the reference in float64.

Sizes stay small (tens of tokens, 16-token tiles) so every case still crosses several
tiles, diagonals and span boundaries yet runs in about a second.
"""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("triton")
if os.environ.get("TRITON_INTERPRET") != "1":  # benchmarks/gpu_check.sh: test_triton_cuda.py runs instead
    pytest.skip("these run the kernel under the Triton interpreter (TRITON_INTERPRET=1)", allow_module_level=True)

from multimodal.kernels.reference import reference_attention  # noqa: E402
from multimodal.kernels.triton_attention import _span_bounds, flash_attention  # noqa: E402


def spans(L: int, *runs: tuple[int, int], B: int = 1) -> torch.Tensor:
    """``Long[B, L]`` with ids 1, 2, ... on the half-open ``runs``."""
    s = torch.zeros(B, L, dtype=torch.long)
    for i, (a, b) in enumerate(runs, start=1):
        s[:, a:b] = i
    return s


def make(B, Hq, Hkv, Lq, Lk, D, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, Hq, Lq, D, generator=g, dtype=dtype).requires_grad_()
    k = torch.randn(B, Hkv, Lk, D, generator=g, dtype=dtype).requires_grad_()
    v = torch.randn(B, Hkv, Lk, D, generator=g, dtype=dtype).requires_grad_()
    do = torch.randn(B, Hq, Lq, D, generator=g, dtype=dtype)
    return q, k, v, do


def check(q, k, v, do, atol=1e-10, **kw):
    """Forward and all three gradients of the kernel equal the reference."""
    block = {key: kw.pop(key) for key in ("block_m", "block_n") if key in kw}
    out = flash_attention(q, k, v, **kw, **block)
    grads = torch.autograd.grad(out, (q, k, v), do)
    ref = reference_attention(q, k, v, **kw)
    ref_grads = torch.autograd.grad(ref, (q, k, v), do)
    assert out.dtype == q.dtype and out.shape == q.shape
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, atol=atol, rtol=0)
    for name, a, b in zip("qkv", grads, ref_grads):
        assert torch.isfinite(a).all(), f"d{name} has NaN/inf"
        torch.testing.assert_close(a, b, atol=atol, rtol=0, msg=lambda m, n=name: f"d{n}: {m}")
    return out, grads


L48 = 48
SPAN_CASES = {
    "no_image": spans(L48),
    "one_image": spans(L48, (10, 30)),
    "two_images": spans(L48, (3, 17), (20, 41)),
    "image_at_start": spans(L48, (0, 21)),
    "image_at_end": spans(L48, (26, 48)),
    "all_image": spans(L48, (0, 48)),
    # one id in two separate runs: the rule still applies (the runs see each other)
    "split_id": spans(L48, (3, 10)) + spans(L48, (30, 41)),
}


@pytest.mark.parametrize("layout", sorted(SPAN_CASES))
def test_causal_spans_layouts(layout):
    q, k, v, do = make(1, 2, 1, L48, L48, 16, seed=sum(map(ord, layout)))
    check(q, k, v, do, mask_kind="causal_spans", span_ids=SPAN_CASES[layout])


@pytest.mark.parametrize("block_m,block_n", [(32, 16), (16, 32)])
def test_uneven_tiles_and_gqa(block_m, block_n):
    q, k, v, do = make(2, 4, 2, 45, 45, 16, seed=block_m)
    s = torch.cat([spans(45, (5, 23)), spans(45, (0, 9), (30, 45))])
    check(q, k, v, do, mask_kind="causal_spans", span_ids=s, block_m=block_m, block_n=block_n)


def test_causal_gqa_ragged_batch():
    q, k, v, do = make(2, 4, 1, 50, 50, 16, seed=1)
    pad = torch.ones(2, 50, dtype=torch.bool)
    pad[0, :7] = False  # left padding, as in batched generation
    check(q, k, v, do, mask_kind="causal", kv_padding=pad)


def test_full_self_attention_vit():
    q, k, v, do = make(2, 2, 2, 37, 37, 32, seed=2)
    check(q, k, v, do, mask_kind="full")


def test_full_cross_attention_lq_ne_lk():
    # resampler: few learned queries over many encoder tokens
    q, k, v, do = make(2, 4, 2, 9, 45, 32, seed=3)
    check(q, k, v, do, mask_kind="full")


def test_head_dim_not_power_of_two():
    q, k, v, do = make(1, 2, 1, 24, 24, 80, seed=4)
    check(q, k, v, do, mask_kind="causal_spans", span_ids=spans(24, (4, 19)))


def test_spans_with_key_padding():
    q, k, v, do = make(2, 2, 2, 40, 40, 16, seed=5)
    s = torch.cat([spans(40, (12, 30)), spans(40, (2, 18))])
    pad = torch.ones(2, 40, dtype=torch.bool)
    pad[1, :2] = False
    check(q, k, v, do, mask_kind="causal_spans", span_ids=s, kv_padding=pad)


def test_decoding_queries_offset_to_the_end():
    # one and three new tokens after a prompt with an image: bottom-right aligned
    for Lq, seed in ((1, 6), (3, 7)):
        q, k, v, do = make(1, 4, 2, Lq, 37, 16, seed=seed)
        check(q, k, v, do, mask_kind="causal_spans", span_ids=spans(37, (5, 30)))


def test_varlen_packed_sequences():
    cu = torch.tensor([0, 13, 40, 47], dtype=torch.int32)
    q, k, v, do = make(1, 4, 2, 47, 47, 16, seed=8)
    # span ids restart in every sequence; equal ids across sequences must not interact
    s = torch.zeros(1, 47, dtype=torch.long)
    s[0, 2:9] = 1
    s[0, 13:30] = 1
    s[0, 33:38] = 2
    s[0, 40:47] = 1
    check(q, k, v, do, mask_kind="causal_spans", span_ids=s, cu_seqlens_q=cu, cu_seqlens_k=cu)


def test_varlen_cross_attention():
    cu_q = torch.tensor([0, 4, 8, 12], dtype=torch.int32)
    cu_k = torch.tensor([0, 20, 33, 50], dtype=torch.int32)
    q, k, v, do = make(1, 2, 2, 12, 50, 16, seed=9)
    check(q, k, v, do, mask_kind="full", cu_seqlens_q=cu_q, cu_seqlens_k=cu_k)


def test_all_masked_rows_give_zero_output_and_gradient():
    q, k, v, do = make(2, 2, 1, 20, 20, 16, seed=10)
    pad = torch.ones(2, 20, dtype=torch.bool)
    pad[1] = False  # a sequence with no real key at all
    pad[0, :5] = False  # left padding: the first 5 queries see nothing under causal
    out, (dq, dk, dv) = check(q, k, v, do, mask_kind="causal", kv_padding=pad)
    assert out[1].abs().max() == 0 and out[0, :, :5].abs().max() == 0
    assert dq[1].abs().max() == 0 and dq[0, :, :5].abs().max() == 0
    assert dk[1].abs().max() == 0 and dv[1].abs().max() == 0
    # more queries than keys under a causal mask: the first Lq - Lk rows are empty
    q, k, v, do = make(1, 2, 2, 20, 12, 16, seed=11)
    out, (dq, _, _) = check(q, k, v, do, mask_kind="causal")
    assert out[:, :, :8].abs().max() == 0 and dq[:, :, :8].abs().max() == 0


def test_float32_and_custom_scale():
    q, k, v, do = make(1, 2, 1, 33, 33, 16, seed=12, dtype=torch.float32)
    check(q, k, v, do, atol=2e-5, mask_kind="causal_spans", span_ids=spans(33, (3, 20)), scale=0.3)


def test_span_bounds_per_sequence():
    s = torch.tensor([[0, 1, 1, 0, 2, 2, 1, 1, 0]])
    cu = torch.tensor([0, 4, 9])
    first, last = _span_bounds(s, cu)
    # sequence 2 starts at 4: local positions 0..4; its id 1 lives at local 2..3
    assert first.tolist() == [[0, 1, 1, 3, 0, 0, 2, 2, 4]]
    assert last.tolist() == [[0, 2, 2, 3, 1, 1, 3, 3, 4]]
    first, last = _span_bounds(torch.tensor([[2, 2, 0, 2, 5]]), None)
    assert first.tolist() == [[0, 0, 2, 0, 4]] and last.tolist() == [[3, 3, 2, 3, 4]]


def test_rejects_bad_shapes():
    q = torch.randn(1, 3, 8, 16)
    k = torch.randn(1, 2, 8, 16)
    with pytest.raises(ValueError, match="multiple"):
        flash_attention(q, k, k, mask_kind="causal")
    with pytest.raises(ValueError, match="span_ids"):
        flash_attention(q, q, q, mask_kind="causal_spans")


def test_float16_inputs_accumulate_in_float32():
    # (bfloat16 cannot be checked here: the interpreter's tl.dot mishandles bf16 bits)
    q, k, v, do = make(1, 2, 1, 40, 40, 64, seed=13, dtype=torch.float16)
    s = spans(40, (5, 25))
    out = flash_attention(q, k, v, mask_kind="causal_spans", span_ids=s)
    grads = torch.autograd.grad(out, (q, k, v), do)
    qd, kd, vd = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref = reference_attention(qd, kd, vd, mask_kind="causal_spans", span_ids=s)
    ref_grads = torch.autograd.grad(ref, (qd, kd, vd), do.double())
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.double(), ref, atol=3e-3, rtol=0)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a.double(), b, atol=1e-2, rtol=1e-2)
