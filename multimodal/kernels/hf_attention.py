"""Register the span-aware attention with Hugging Face transformers.

After :func:`register_hf_attention`, a model loaded with
``attn_implementation="medany_spans"`` (or switched with
``model.set_attn_implementation("medany_spans")``) routes every attention layer through
:func:`multimodal.kernels.dispatch.attention`. Per-token span ids travel as an extra
forward kwarg, ``model(inputs_embeds=..., span_ids=span_ids)``: transformers (5.x)
forwards extra kwargs down to the attention function (verified for ``LlamaForCausalLM``).
``generate`` rejects unknown kwargs, so there wrap the call in
``with use_span_ids(span_ids): model.generate(...)``. Without span ids the layer is plain
causal attention.

Letters: B batch, H heads, Lq/Lk query/key tokens (Lk includes the KV cache), D head dim.
"""

from __future__ import annotations

import contextlib
import contextvars

import torch

from multimodal.errors import require
from multimodal.kernels.dispatch import attention, masked_sdpa
from multimodal.kernels.masks import query_spans

NAME = "medany_spans"
_SPAN_IDS: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("medany_span_ids", default=None)


@contextlib.contextmanager
def use_span_ids(span_ids: torch.Tensor | None):
    """Make ``span_ids`` (``Int[B, L]`` over the prompt) visible to every ``medany_spans``
    attention call inside the block; an explicit ``span_ids`` forward kwarg wins."""
    token = _SPAN_IDS.set(span_ids)
    try:
        yield
    finally:
        _SPAN_IDS.reset(token)


def align_span_ids(span_ids: torch.Tensor, Lk: int) -> torch.Tensor:
    """Span ids ``[B, S]`` of the prompt aligned to ``Lk`` key positions.

    While generating, keys grow past the prompt: the new tokens are text (id 0). A
    chunked prefill sees only the first ``Lk`` positions.
    """
    S = span_ids.shape[-1]
    if S >= Lk:
        return span_ids[..., :Lk]
    return torch.cat([span_ids, span_ids.new_zeros(*span_ids.shape[:-1], Lk - S)], dim=-1)


def medany_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers attention function: ``[B, H, L, D]`` in, ``([B, Lq, H, D], None)`` out.

    ``attention_mask`` is what :func:`medany_mask` built: ``None`` (no padding), a 2D key
    padding mask ``Bool[B, Lk]``, or a 4D boolean mask for patterns we do not fuse
    (packed sequences, sliding windows), which takes the SDPA path.
    """
    if dropout and module.training:
        raise NotImplementedError("medany_spans attention does not implement attention dropout")
    is_causal = kwargs.get("is_causal")
    is_causal = getattr(module, "is_causal", True) if is_causal is None else is_causal
    Lq, Lk = query.shape[2], key.shape[2]
    span_ids = kwargs.get("span_ids")
    if span_ids is None:
        span_ids = _SPAN_IDS.get()
    # Decoding past the prompt: every query is a new text token (span 0), which adds nothing
    # to the causal mask, so skip building span masks per layer per token (shapes only, no sync).
    if span_ids is not None and is_causal and Lk - Lq < span_ids.shape[-1]:
        span_ids = align_span_ids(span_ids.to(query.device), Lk)
        kind = "causal_spans"
    else:
        span_ids = None
        kind = "causal" if is_causal else "full"

    if attention_mask is not None and attention_mask.dim() == 4:
        allowed = attention_mask if attention_mask.dtype == torch.bool else attention_mask == 0
        if span_ids is not None:
            span_q = query_spans(span_ids, Lq)
            same = (span_q[:, :, None] == span_ids[:, None, :]) & (span_q[:, :, None] != 0)  # [B, Lq, Lk]
            allowed = allowed | same[:, None]
        out = masked_sdpa(query, key, value, allowed, scale=scaling)
    else:
        kv_padding = None
        if attention_mask is not None:
            kv_padding = attention_mask[:, -Lk:].bool()  # [B, Lk]
        out = attention(query, key, value, mask_kind=kind, span_ids=span_ids, kv_padding=kv_padding,
                        scale=scaling)
    return out.transpose(1, 2).contiguous(), None  # [B, Lq, H, D]


def medany_mask(batch_size: int, q_length: int, kv_length: int, q_offset=0, kv_offset=0,
                mask_function=None, attention_mask=None, **kwargs):
    """transformers mask builder: the 2D key-padding mask (or ``None``) when the pattern
    is plain causal, else the dense 4D boolean mask from ``sdpa_mask``."""
    from transformers import masking_utils as mu

    plain = mask_function is None or mask_function is mu.causal_mask_function
    if plain and (attention_mask is None or attention_mask.shape[-1] >= kv_length):
        if attention_mask is None:
            return None
        pad = attention_mask[:, -kv_length:].bool()  # [B, Lk]
        return None if bool(pad.all()) else pad
    kwargs["allow_is_causal_skip"] = False
    return mu.sdpa_mask(batch_size=batch_size, q_length=q_length, kv_length=kv_length, q_offset=q_offset,
                        kv_offset=kv_offset, mask_function=mask_function or mu.causal_mask_function,
                        attention_mask=attention_mask, **kwargs)


def register_hf_attention() -> str:
    """Register ``"medany_spans"`` with transformers' attention and mask interfaces.

    Idempotent. Returns the implementation name to pass as ``attn_implementation``.
    """
    require("transformers", extra="all")
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, medany_attention_forward)
    try:
        from transformers.masking_utils import AttentionMaskInterface
    except ImportError:  # transformers < 4.53 hands every attention a 4D float mask
        return NAME
    AttentionMaskInterface.register(NAME, medany_mask)
    return NAME
