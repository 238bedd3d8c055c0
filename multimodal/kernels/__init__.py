"""Attention kernels: image-span masks, a PyTorch reference, the fused Triton kernel.

Importing this package never imports triton; :func:`attention` loads the Triton kernel
only when it picks that backend (CUDA tensors, ``set_attention_backend("triton")`` or
``MEDANY_ATTENTION=triton``).
"""

from multimodal.kernels.dispatch import (
                                         BACKENDS,
                                         attention,
                                         attention_backend,
                                         forced_attention_backend,
                                         masked_sdpa,
                                         select_backend,
                                         set_attention_backend,
)
from multimodal.kernels.hf_attention import align_span_ids, register_hf_attention, use_span_ids
from multimodal.kernels.masks import MASK_KINDS, dense_mask, packed_mask, query_spans, span_ids_from_mask
from multimodal.kernels.reference import reference_attention

__all__ = [
    "BACKENDS",
    "MASK_KINDS",
    "align_span_ids",
    "attention",
    "dense_mask",
    "masked_sdpa",
    "packed_mask",
    "query_spans",
    "reference_attention",
    "register_hf_attention",
    "select_backend",
    "set_attention_backend",
    "attention_backend",
    "forced_attention_backend",
    "span_ids_from_mask",
    "use_span_ids",
]
