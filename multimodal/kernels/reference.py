"""Plain PyTorch attention: the specification the fused kernel is tested against.

Letters: B batch, Hq query heads, Hkv key/value heads (GQA: Hq % Hkv == 0), Lq query
tokens, Lk key tokens, D head dim, N packed sequences.

Slow and memory hungry on purpose (materializes the score matrix); it spells out the
mask semantics documented in :mod:`multimodal.kernels.masks` without sharing code with
the fast paths.
"""

from __future__ import annotations

import math

import torch


def _allowed(mask_kind: str, span_ids, kv_padding, Lq: int, Lk: int, device) -> torch.Tensor:
    """``Bool[B or 1, Lq, Lk]`` for one (unpacked) batch."""
    q_pos = torch.arange(Lq, device=device) + (Lk - Lq)  # bottom-right aligned
    k_pos = torch.arange(Lk, device=device)
    if mask_kind == "full":
        allowed = torch.ones(1, Lq, Lk, dtype=torch.bool, device=device)
    elif mask_kind in ("causal", "causal_spans"):
        allowed = (k_pos[None, :] <= q_pos[:, None])[None]  # [1, Lq, Lk]
    else:
        raise ValueError(f"unknown mask_kind {mask_kind!r}")
    if mask_kind == "causal_spans":
        if span_ids is None:
            raise ValueError("causal_spans needs span_ids")
        span_k = span_ids  # [B, Lk]
        idx = q_pos.clamp(min=0, max=max(Lk - 1, 0))
        span_q = torch.where(q_pos >= 0, span_k[:, idx], torch.zeros_like(span_k[:, idx]))  # [B, Lq]
        same = (span_q[:, :, None] == span_k[:, None, :]) & (span_q[:, :, None] != 0)  # [B, Lq, Lk]
        allowed = allowed | same
    if kv_padding is not None:
        allowed = allowed & kv_padding.bool()[:, None, :]
    return allowed


def reference_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    mask_kind: str = "causal_spans",
    span_ids: torch.Tensor | None = None,
    scale: float | None = None,
    kv_padding: torch.Tensor | None = None,
    cu_seqlens_q: torch.Tensor | None = None,
    cu_seqlens_k: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax attention with the MedAny masks, computed in float32 (float64 for float64 input).

    Args:
        q: ``[B, Hq, Lq, D]``.
        k, v: ``[B, Hkv, Lk, D]``.
        mask_kind: ``"full"``, ``"causal"`` or ``"causal_spans"``.
        span_ids: ``Long[B, Lk]`` span id per key position (0 = text), for ``causal_spans``.
        scale: softmax scale, default ``D ** -0.5``.
        kv_padding: optional ``Bool[B, Lk]``, True where the key is a real token.
        cu_seqlens_q, cu_seqlens_k: optional ``Int[N + 1]`` offsets of packed sequences
            (then B == 1 and sequences never attend to each other).

    Returns:
        ``[B, Hq, Lq, D]`` in the dtype of ``q``; rows without any allowed key are 0.
    """
    if cu_seqlens_q is not None:
        cu_k = cu_seqlens_q if cu_seqlens_k is None else cu_seqlens_k
        outs = []
        for i in range(len(cu_seqlens_q) - 1):
            qs, qe = int(cu_seqlens_q[i]), int(cu_seqlens_q[i + 1])
            ks, ke = int(cu_k[i]), int(cu_k[i + 1])
            outs.append(
                reference_attention(
                    q[:, :, qs:qe], k[:, :, ks:ke], v[:, :, ks:ke],
                    mask_kind=mask_kind,
                    span_ids=None if span_ids is None else span_ids[:, ks:ke],
                    scale=scale,
                    kv_padding=None if kv_padding is None else kv_padding[:, ks:ke],
                )
            )
        return torch.cat(outs, dim=2)

    B, Hq, Lq, D = q.shape
    Hkv, Lk = k.shape[1], k.shape[2]
    if Hq % Hkv:
        raise ValueError(f"query heads ({Hq}) must be a multiple of key/value heads ({Hkv})")
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    group = Hq // Hkv
    kf = k.to(work).repeat_interleave(group, dim=1)  # [B, Hq, Lk, D]
    vf = v.to(work).repeat_interleave(group, dim=1)  # [B, Hq, Lk, D]
    scores = torch.matmul(q.to(work), kf.transpose(-1, -2)) * scale  # [B, Hq, Lq, Lk]
    allowed = _allowed(mask_kind, span_ids, kv_padding, Lq, Lk, q.device)[:, None]  # [B, 1, Lq, Lk]
    scores = scores.masked_fill(~allowed, float("-inf"))
    any_key = allowed.any(dim=-1, keepdim=True)  # [B, 1, Lq, 1]
    # an all -inf row would give NaN; such queries see nothing and output 0
    scores = torch.where(any_key, scores, torch.zeros_like(scores))
    probs = torch.softmax(scores, dim=-1) * any_key
    out = torch.matmul(probs, vf)  # [B, Hq, Lq, D]
    return out.to(q.dtype)
