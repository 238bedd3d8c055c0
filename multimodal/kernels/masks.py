"""Span ids and dense attention masks for the image-span attention.

Letters: B batch, L tokens, Lq query tokens, Lk key tokens, T packed tokens.

Mask semantics (shared by the reference, the SDPA fallback and the Triton kernel):

* ``"full"``: every query sees every (valid) key; Lq and Lk may differ.
* ``"causal"``: ``k <= q + (Lk - Lq)``; causal masks are aligned bottom-right, so a
  single decoding query (Lq == 1) sees the whole KV cache.
* ``"causal_spans"``: ``causal(q, k) or (span[q] == span[k] != 0)``; ``span`` holds one
  id per *key* position (the query at row ``q`` has position ``q + Lk - Lq``). Tokens of
  the same image attend to each other bidirectionally, text stays causal.

Key padding (``kv_padding``, True where the key is a real token, the Hugging Face
``attention_mask`` convention) and packed sequences (``cu_seqlens``) remove keys on top
of the mask kind. A query with no allowed key outputs zeros.
"""

from __future__ import annotations

import torch

MASK_KINDS = ("full", "causal", "causal_spans")


def check_mask_kind(mask_kind: str) -> str:
    """Return ``mask_kind`` if known, else raise ``ValueError``."""
    if mask_kind not in MASK_KINDS:
        raise ValueError(f"mask_kind must be one of {MASK_KINDS}, got {mask_kind!r}")
    return mask_kind


def span_ids_from_mask(is_media: torch.Tensor) -> torch.Tensor:
    """Number the contiguous runs of media tokens per row.

    Args:
        is_media: ``Bool[B, L]``, True at image (or other media) placeholder positions.

    Returns:
        ``Long[B, L]``: 0 for text, 1, 2, 3 ... for the first, second, third run of
        media tokens in each row.
    """
    if is_media.dim() != 2:
        raise ValueError(f"is_media must be [B, L], got shape {tuple(is_media.shape)}")
    media = is_media.bool()
    prev = torch.zeros_like(media)
    prev[:, 1:] = media[:, :-1]
    starts = media & ~prev  # [B, L] first token of every run
    run_index = torch.cumsum(starts.long(), dim=1)  # [B, L]
    return torch.where(media, run_index, torch.zeros_like(run_index))


def dense_mask(
    kind: str,
    span_q: torch.Tensor | None,
    span_k: torch.Tensor | None,
    Lq: int,
    Lk: int,
    *,
    kv_padding: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Materialize the boolean mask ``Bool[B, 1, Lq, Lk]`` (True = may attend).

    Args:
        kind: ``"full"``, ``"causal"`` or ``"causal_spans"``.
        span_q: ``Long[B, Lq]`` span ids of the queries (needed for ``causal_spans``).
        span_k: ``Long[B, Lk]`` span ids of the keys (needed for ``causal_spans``).
        Lq, Lk: query and key lengths; causal masks are aligned bottom-right.
        kv_padding: optional ``Bool[B, Lk]``, True where the key is a real token.
        device: device of the mask when no span tensor gives one.
    """
    check_mask_kind(kind)
    for t in (span_q, span_k, kv_padding):
        if t is not None:
            device = t.device
    q_pos = torch.arange(Lq, device=device) + (Lk - Lq)  # [Lq] query positions in key coordinates
    k_pos = torch.arange(Lk, device=device)
    if kind == "full":
        mask = torch.ones(1, 1, Lq, Lk, dtype=torch.bool, device=device)
    else:
        mask = (k_pos[None, :] <= q_pos[:, None])[None, None]  # [1, 1, Lq, Lk]
    if kind == "causal_spans":
        if span_q is None or span_k is None:
            raise ValueError("causal_spans needs span ids for queries and keys")
        same = (span_q[:, :, None] == span_k[:, None, :]) & (span_q[:, :, None] != 0)  # [B, Lq, Lk]
        mask = mask | same[:, None]  # [B, 1, Lq, Lk]
    if kv_padding is not None:
        mask = mask & kv_padding.bool()[:, None, None, :]
    return mask


def query_spans(span_ids: torch.Tensor, Lq: int) -> torch.Tensor:
    """Span ids of the queries given span ids over keys ``[B, Lk]`` (bottom-right aligned)."""
    Lk = span_ids.shape[-1]
    if Lq <= Lk:
        return span_ids[..., Lk - Lq:]
    pad = span_ids.new_zeros(*span_ids.shape[:-1], Lq - Lk)  # queries before the first key: text
    return torch.cat([pad, span_ids], dim=-1)


def packed_mask(
    kind: str,
    cu_seqlens_q: torch.Tensor,
    cu_seqlens_k: torch.Tensor,
    span_ids: torch.Tensor | None = None,
    kv_padding: torch.Tensor | None = None,
) -> torch.Tensor:
    """Block-diagonal ``Bool[1, 1, Tq, Tk]`` mask for packed sequences.

    ``cu_seqlens_q``/``cu_seqlens_k`` are ``Int[N + 1]`` offsets; ``span_ids`` is
    ``[1, Tk]`` (ids only need to be unique inside one sequence).
    """
    check_mask_kind(kind)
    device = cu_seqlens_q.device
    cq = cu_seqlens_q.long()
    ck = cu_seqlens_k.long()
    Tq, Tk = int(cq[-1]), int(ck[-1])
    q_idx = torch.arange(Tq, device=device)
    k_idx = torch.arange(Tk, device=device)
    seq_q = torch.searchsorted(cq[1:], q_idx, right=True)  # [Tq] sequence of each query
    seq_k = torch.searchsorted(ck[1:], k_idx, right=True)  # [Tk]
    shift = (ck[1:] - ck[:-1]) - (cq[1:] - cq[:-1])  # [N] bottom-right alignment per sequence
    q_local = q_idx - cq[seq_q] + shift[seq_q]  # query positions in their sequence's key coordinates
    k_local = k_idx - ck[seq_k]
    mask = seq_q[:, None] == seq_k[None, :]  # [Tq, Tk]
    if kind != "full":
        allowed = k_local[None, :] <= q_local[:, None]
        if kind == "causal_spans":
            if span_ids is None:
                raise ValueError("causal_spans needs span_ids")
            spans = span_ids.reshape(-1)  # [Tk]
            # query span = span of the key at the query's (bottom-right aligned) position
            q_key_pos = (ck[seq_q] + q_local).clamp(min=0, max=max(Tk - 1, 0))
            span_q = torch.where(q_local >= 0, spans[q_key_pos], torch.zeros_like(q_key_pos))
            allowed = allowed | ((span_q[:, None] == spans[None, :]) & (span_q[:, None] != 0))
        mask = mask & allowed
    if kv_padding is not None:
        mask = mask & kv_padding.reshape(-1).bool()[None, :]
    return mask[None, None]  # [1, 1, Tq, Tk]
