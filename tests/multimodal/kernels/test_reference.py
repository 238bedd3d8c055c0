"""The reference attention is the specification: check it against first principles."""

from __future__ import annotations

import math

import torch

from multimodal.kernels.reference import reference_attention


def test_matches_explicit_softmax_loop():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 1, 6, 4, generator=g, dtype=torch.float64) for _ in range(3))
    span = torch.tensor([[0, 1, 1, 1, 0, 0]])
    out = reference_attention(q, k, v, mask_kind="causal_spans", span_ids=span)
    for i in range(6):
        keys = [j for j in range(6) if j <= i or (span[0, i] == span[0, j] != 0)]
        s = torch.stack([q[0, 0, i] @ k[0, 0, j] / math.sqrt(4) for j in keys])
        w = torch.softmax(s, 0)
        want = sum(w[n] * v[0, 0, j] for n, j in enumerate(keys))
        torch.testing.assert_close(out[0, 0, i], want)


def test_gqa_equals_repeated_heads_and_empty_rows_are_zero():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 4, 5, 8, generator=g)
    k, v = torch.randn(2, 2, 5, 8, generator=g), torch.randn(2, 2, 5, 8, generator=g)
    pad = torch.ones(2, 5, dtype=torch.bool)
    pad[1, :2] = False
    out = reference_attention(q, k, v, mask_kind="causal", kv_padding=pad)
    rep = reference_attention(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), mask_kind="causal",
                              kv_padding=pad)
    torch.testing.assert_close(out, rep)
    assert torch.isfinite(out).all()
    assert out[1, :, :2].abs().max() == 0 and out[1, :, 2:].abs().max() > 0
