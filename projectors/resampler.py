"""Perceiver-style resampler: ``M`` learned queries cross-attend to the encoder tokens.

Fixes the number of LLM tokens per image (Flamingo / Qwen-VL / Idefics style)
whatever the encoder's grid. Letters: B batch, N encoder tokens, M queries,
H heads, Dh head width, D_in encoder width, D LLM width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from multimodal.kernels.dispatch import attention

from .base import Projector
from .registry import register_projector


class ResamplerLayer(nn.Module):
    """Pre-norm cross-attention (queries -> tokens) followed by a GELU feed-forward."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"resampler width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, queries: Tensor, tokens: Tensor) -> Tensor:
        b, m, d = queries.shape  # [B, M, D]
        n = tokens.shape[1]  # [B, N, D]
        h, dh = self.heads, d // self.heads
        q = self.q(self.norm_q(queries)).view(b, m, h, dh).transpose(1, 2)  # [B, H, M, Dh]
        k, v = self.kv(self.norm_kv(tokens)).view(b, n, 2, h, dh).permute(2, 0, 3, 1, 4)  # 2 x [B, H, N, Dh]
        attn = self.attend(q, k, v).transpose(1, 2).reshape(b, m, d)  # [B, M, D]
        queries = queries + self.out(attn)
        return queries + self.ff(self.norm_ff(queries))

    @staticmethod
    def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Full (unmasked) cross-attention; Lq = M differs from Lk = N (Triton on CUDA)."""
        return attention(q, k, v, mask_kind="full")


class Resampler(Projector):
    """``[B, N, D_in] -> [B, M, D_out]`` with ``num_queries`` learned queries."""

    def __init__(self, in_dim: int, out_dim: int, num_queries: int = 32, heads: int = 8, depth: int = 1):
        super().__init__(in_dim, out_dim)
        self.num_queries = num_queries
        self.input_proj = nn.Linear(in_dim, out_dim)
        self.queries = nn.Parameter(torch.randn(num_queries, out_dim) * out_dim**-0.5)
        self.layers = nn.ModuleList(ResamplerLayer(out_dim, heads) for _ in range(depth))
        self.norm_out = nn.LayerNorm(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.input_proj(x)  # [B, N, D]
        q = self.queries.unsqueeze(0).expand(x.shape[0], -1, -1)  # [B, M, D]
        for layer in self.layers:
            q = layer(q, tokens)
        return self.norm_out(q)  # [B, M, D]

    def num_output_tokens(self, n_in: int) -> int:
        return self.num_queries


@register_projector(r"resampler")
def resampler(in_dim: int, out_dim: int, num_queries: int = 32, heads: int = 8, depth: int = 1) -> Resampler:
    return Resampler(in_dim, out_dim, num_queries=num_queries, heads=heads, depth=depth)
