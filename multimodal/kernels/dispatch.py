"""Pick an attention backend: the Triton kernel on CUDA, SDPA with a dense mask elsewhere.

Letters: B batch, Hq query heads, Hkv key/value heads, Lq/Lk query/key tokens, D head dim.

:func:`set_attention_backend` overrides the choice for the process (``triton`` on CPU
runs the kernel under the Triton interpreter: slow, for tests); ``MEDANY_ATTENTION=
triton|sdpa|reference`` sets it once, when this module is imported (as timm's
``set_fused_attn`` and ``TIMM_FUSED_ATTN`` do). Triton is imported only inside the
Triton branch, so CPU-only installs never need it.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from multimodal.kernels.masks import check_mask_kind, dense_mask, packed_mask, query_spans

BACKENDS = ("triton", "sdpa", "reference")
ENV_VAR = "MEDANY_ATTENTION"
_TORCH_HAS_GQA = tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 5)


def _check(name: str, where: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"{where} must be one of {BACKENDS}, got {name!r}")
    return name


_FORCED: str | None = _check(os.environ[ENV_VAR].strip().lower(), ENV_VAR) if os.environ.get(ENV_VAR, "").strip() \
    else None


def set_attention_backend(name: str | None) -> None:
    """Force ``"triton"``, ``"sdpa"`` or ``"reference"`` for every later call; ``None`` picks by device again."""
    global _FORCED
    _FORCED = None if name is None else _check(str(name).strip().lower(), "The attention backend")


def attention_backend() -> str | None:
    """The forced backend, or None when it is picked by device."""
    return _FORCED


@contextmanager
def forced_attention_backend(name: str | None):
    """:func:`set_attention_backend` for the duration of a ``with`` block (tests, benchmarks)."""
    previous = _FORCED
    set_attention_backend(name)
    try:
        yield
    finally:
        set_attention_backend(previous)


def select_backend(device: torch.device) -> str:
    """Backend for tensors on ``device``: the forced one, else triton on CUDA, else sdpa."""
    if _FORCED is not None:
        return _FORCED
    return "triton" if device.type == "cuda" else "sdpa"


def masked_sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, *,
    scale: float | None = None, is_causal: bool = False,
) -> torch.Tensor:
    """SDPA with a boolean mask ``[B or 1, 1, Lq, Lk]``; fully masked rows give 0, not NaN.

    GQA is handled by SDPA (``enable_gqa``) or by repeating K/V on old torch.
    """
    Hq, Hkv = q.shape[1], k.shape[1]
    kw = {}
    if Hq != Hkv:
        if _TORCH_HAS_GQA:
            kw["enable_gqa"] = True
        else:
            k = k.repeat_interleave(Hq // Hkv, dim=1)  # [B, Hq, Lk, D]
            v = v.repeat_interleave(Hq // Hkv, dim=1)  # [B, Hq, Lk, D]
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, scale=scale, is_causal=is_causal, **kw)
    any_key = mask.any(dim=-1, keepdim=True)  # [B, 1, Lq, 1]
    # SDPA returns NaN (and NaN gradients) for an all-False row: let such rows attend
    # everywhere, then zero their output so they neither see nor leak anything
    safe = mask | ~any_key
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, scale=scale, **kw)
    return out * any_key.to(out.dtype)


def _sdpa_attention(q, k, v, mask_kind, span_ids, cu_q, cu_k, kv_padding, scale):
    Lq, Lk = q.shape[2], k.shape[2]
    if cu_q is not None:
        mask = packed_mask(mask_kind, cu_q, cu_k, span_ids, kv_padding)  # [1, 1, Tq, Tk]
        return masked_sdpa(q, k, v, mask, scale=scale)
    if kv_padding is None and mask_kind != "causal_spans":
        if mask_kind == "full" or Lq == 1:
            return masked_sdpa(q, k, v, None, scale=scale)
        if Lq == Lk:
            return masked_sdpa(q, k, v, None, scale=scale, is_causal=True)
    span_q = query_spans(span_ids, Lq) if span_ids is not None else None
    mask = dense_mask(mask_kind, span_q, span_ids, Lq, Lk, kv_padding=kv_padding, device=q.device)
    return masked_sdpa(q, k, v, mask, scale=scale)


def _triton_attention(q, k, v, **kw):
    if not q.is_cuda and "multimodal.kernels.triton_attention" not in sys.modules:
        # the interpreter must be chosen before the kernels are decorated (module import)
        os.environ.setdefault("TRITON_INTERPRET", "1")
    from multimodal.kernels.triton_attention import flash_attention

    return flash_attention(q, k, v, **kw)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    mask_kind: str = "causal_spans",
    span_ids: torch.Tensor | None = None,
    cu_seqlens: torch.Tensor | None = None,
    cu_seqlens_k: torch.Tensor | None = None,
    kv_padding: torch.Tensor | None = None,
    scale: float | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """Attention with the MedAny masks on the best available backend.

    Args:
        q: ``[B, Hq, Lq, D]``; k, v: ``[B, Hkv, Lk, D]`` (``Hq % Hkv == 0``).
        mask_kind: ``"causal_spans"`` (text causal, image spans bidirectional),
            ``"causal"`` or ``"full"``; causal masks align bottom-right (decoding).
        span_ids: ``Int[B, Lk]`` span id per key token (0 = text); ``None`` with
            ``causal_spans`` means plain causal.
        cu_seqlens: ``Int[N + 1]`` offsets of packed sequences (B == 1); ``cu_seqlens_k``
            defaults to it.
        kv_padding: optional ``Bool[B, Lk]``, True where the key is a real token.
        scale: softmax scale, default ``D ** -0.5``.
        backend: force ``"triton"``, ``"sdpa"`` or ``"reference"`` (else env/device).

    Returns:
        ``[B, Hq, Lq, D]``; queries with no allowed key give 0.
    """
    check_mask_kind(mask_kind)
    if mask_kind == "causal_spans" and span_ids is None:
        mask_kind = "causal"
    if mask_kind != "causal_spans":
        span_ids = None
    if span_ids is not None and span_ids.shape[-1] != k.shape[2]:
        raise ValueError(f"span_ids cover {span_ids.shape[-1]} tokens, keys have {k.shape[2]}")
    cu_k = cu_seqlens if cu_seqlens_k is None else cu_seqlens_k
    if backend is None:
        backend = select_backend(q.device)
        if backend == "triton" and q.is_cuda and q.dtype == torch.float64 and _FORCED is None:
            backend = "sdpa"  # Triton has no fp64 tensor-core path
    if backend == "triton":
        return _triton_attention(q, k, v, mask_kind=mask_kind, span_ids=span_ids, scale=scale,
                                 kv_padding=kv_padding, cu_seqlens_q=cu_seqlens, cu_seqlens_k=cu_k)
    if backend == "reference":
        from multimodal.kernels.reference import reference_attention

        return reference_attention(q, k, v, mask_kind=mask_kind, span_ids=span_ids, scale=scale,
                                   kv_padding=kv_padding, cu_seqlens_q=cu_seqlens, cu_seqlens_k=cu_k)
    if backend != "sdpa":
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return _sdpa_attention(q, k, v, mask_kind, span_ids, cu_seqlens, cu_k, kv_padding, scale)
