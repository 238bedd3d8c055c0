"""Token-count reducers for long encoder outputs (speech frames, dense image grids).

Whisper emits 50 frames per second; feeding all 1,500 of a 30 s window to a
small LLM wastes context. These projectors merge ``k`` neighbours first.

Letters: B batch, N tokens in, M = ceil(N / k) tokens out, D_in / D_out widths.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from .base import Projector
from .registry import register_projector


class ConcatDownsampler(Projector):
    """Concatenate each run of ``k`` tokens, then a 2-layer GELU MLP.

    ``[B, N, D_in] -> [B, ceil(N/k), D_out]``; the tail is zero-padded to a
    multiple of ``k`` (SALMONN / Qwen-Audio style frame stacking).
    """

    def __init__(self, in_dim: int, out_dim: int, k: int = 4):
        super().__init__(in_dim, out_dim)
        if k < 1:
            raise ValueError(f"downsampling factor k must be >= 1, got {k}")
        self.k = k
        self.net = nn.Sequential(nn.Linear(in_dim * k, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape  # [B, N, D_in]
        pad = (-n) % self.k
        if pad:
            x = F.pad(x, (0, 0, 0, pad))  # [B, N + pad, D_in]
        x = x.reshape(b, (n + pad) // self.k, self.k * d)  # [B, M, k*D_in]
        return self.net(x)  # [B, M, D_out]

    def num_output_tokens(self, n_in: int) -> int:
        return math.ceil(n_in / self.k)


class ConvDownsampler(Projector):
    """Strided 1-D convolution (kernel = stride = ``k``), GELU, linear.

    ``[B, N, D_in] -> [B, ceil(N/k), D_out]``; learns a weighted merge where
    :class:`ConcatDownsampler` keeps every frame's features side by side.
    """

    def __init__(self, in_dim: int, out_dim: int, k: int = 4):
        super().__init__(in_dim, out_dim)
        if k < 1:
            raise ValueError(f"downsampling factor k must be >= 1, got {k}")
        self.k = k
        self.conv = nn.Conv1d(in_dim, out_dim, kernel_size=k, stride=k)
        self.proj = nn.Linear(out_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[1]  # [B, N, D_in]
        pad = (-n) % self.k
        x = F.pad(x.transpose(1, 2), (0, pad))  # [B, D_in, N + pad]
        x = self.conv(x).transpose(1, 2)  # [B, M, D_out]
        return self.proj(F.gelu(x))

    def num_output_tokens(self, n_in: int) -> int:
        return math.ceil(n_in / self.k)


@register_projector(r"concat(?P<k>\d+)")
def concat(in_dim: int, out_dim: int, k: int) -> ConcatDownsampler:
    return ConcatDownsampler(in_dim, out_dim, k=k)


@register_projector(r"conv(?P<k>\d+)")
def conv(in_dim: int, out_dim: int, k: int) -> ConvDownsampler:
    return ConvDownsampler(in_dim, out_dim, k=k)
