"""Span ids and dense masks."""

from __future__ import annotations

import pytest
import torch

from multimodal.kernels.masks import dense_mask, packed_mask, query_spans, span_ids_from_mask


def test_span_ids_number_runs_per_row():
    is_media = torch.tensor([
        [0, 1, 1, 0, 0, 1, 0, 1],
        [1, 1, 0, 0, 0, 0, 1, 1],
        [0, 0, 0, 0, 0, 0, 0, 0],
    ], dtype=torch.bool)
    assert span_ids_from_mask(is_media).tolist() == [
        [0, 1, 1, 0, 0, 2, 0, 3],
        [1, 1, 0, 0, 0, 0, 2, 2],
        [0, 0, 0, 0, 0, 0, 0, 0],
    ]
    with pytest.raises(ValueError):
        span_ids_from_mask(is_media[0])


def test_dense_mask_matches_the_rule_elementwise():
    span = torch.tensor([[0, 1, 1, 1, 0, 2, 2, 0]])
    m = dense_mask("causal_spans", span, span, 8, 8)
    assert m.shape == (1, 1, 8, 8)
    for q in range(8):
        for k in range(8):
            want = k <= q or (span[0, q] == span[0, k] != 0)
            assert bool(m[0, 0, q, k]) == bool(want), (q, k)
    assert dense_mask("full", None, None, 3, 5).all()
    causal = dense_mask("causal", None, None, 2, 5)[0, 0]  # bottom-right aligned
    assert causal.tolist() == [[True] * 4 + [False], [True] * 5]


def test_dense_mask_key_padding_and_query_spans():
    span = torch.tensor([[0, 0, 1, 1, 0]])
    pad = torch.tensor([[False, True, True, True, True]])
    m = dense_mask("causal_spans", query_spans(span, 2), span, 2, 5, kv_padding=pad)[0, 0]
    assert m.tolist() == [[False, True, True, True, False], [False, True, True, True, True]]
    assert query_spans(span, 7).tolist() == [[0, 0, 0, 0, 1, 1, 0]]
    with pytest.raises(ValueError, match="mask_kind"):
        dense_mask("sliding", None, None, 2, 2)


def test_packed_mask_is_block_diagonal():
    cu = torch.tensor([0, 3, 7])
    span = torch.tensor([[0, 1, 1, 1, 1, 0, 0]])  # id 1 in both sequences
    m = packed_mask("causal_spans", cu, cu, span)[0, 0]
    assert not m[:3, 3:].any() and not m[3:, :3].any()
    assert m[1, 2] and m[3, 4] and not m[2, 3]
    assert m[5].tolist() == [False] * 3 + [True, True, True, False]
