"""Tiny deterministic image encoders for tests and smoke runs (pure torch, no downloads).

Letters: B batch, C channels, H/W pixels, h/w token grid, N tokens (= h*w), D width,
Hd heads, Dh head width.

* ``tiny_vit``: patch 8 on 32x32 images, width 32, 2 pre-norm blocks, 4 heads
  -> ``[B, 16, 32]``.
* ``tiny_cnn``: three strided convs 32 -> 4x4 grid -> ``[B, 16, 32]``.

Both take ``seed`` so two builds with the same seed hold identical weights,
whatever the global RNG state is.
"""

from __future__ import annotations

import torch
from torch import nn

from multimodal.kernels.dispatch import attention
from multimodal.rng import seeded

from .base import Encoder, ImagePreprocess
from .registry import register_encoder

TINY_IMAGE = 32


class TinyAttention(nn.Module):
    """Multi-head self-attention over all tokens (bidirectional, no mask)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``[B, Hd, N, Dh]`` x3 -> ``[B, Hd, N, Dh]``; our fused kernel on CUDA, SDPA on CPU."""
        return attention(q, k, v, mask_kind="full")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.heads, d // self.heads)  # [B, N, 3, Hd, Dh]
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x [B, Hd, N, Dh]
        out = self.attend(q, k, v)  # [B, Hd, N, Dh]
        return self.proj(out.transpose(1, 2).reshape(b, n, d))  # [B, N, D]


class TinyBlock(nn.Module):
    """Pre-norm transformer block: attention then a 4x GELU MLP, both residual."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = TinyAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(Encoder):
    """Patch-embedding ViT without a class token: ``[B, 3, S, S] -> [B, (S/P)^2, D]``."""

    def __init__(self, image_size: int = TINY_IMAGE, patch: int = 8, width: int = 32,
                 layers: int = 2, heads: int = 4):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image size {image_size} is not a multiple of patch {patch}")
        self.grid = image_size // patch
        self.patch_embed = nn.Conv2d(3, width, kernel_size=patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.randn(1, self.grid * self.grid, width) * 0.02)
        self.blocks = nn.ModuleList(TinyBlock(width, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.out_dim = width
        self.name = "tiny_vit"
        self.preprocess = ImagePreprocess(size=image_size)

    def num_tokens(self) -> int:
        return self.grid * self.grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # [B, D, h, w]
        x = x.flatten(2).transpose(1, 2) + self.pos_embed  # [B, N, D]
        for block in self.blocks:
            x = block(x)
        return self.norm(x)  # [B, N, D]


class TinyCNN(Encoder):
    """Three stride-2 conv layers: ``[B, 3, S, S] -> [B, (S/8)^2, D]``."""

    def __init__(self, image_size: int = TINY_IMAGE, width: int = 32):
        super().__init__()
        if image_size % 8:
            raise ValueError(f"image size {image_size} is not a multiple of 8")
        self.grid = image_size // 8
        self.body = nn.Sequential(
            nn.Conv2d(3, width // 2, 3, stride=2, padding=1), nn.GroupNorm(4, width // 2), nn.GELU(),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1), nn.GroupNorm(4, width), nn.GELU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
        )
        self.out_dim = width
        self.name = "tiny_cnn"
        self.preprocess = ImagePreprocess(size=image_size)

    def num_tokens(self) -> int:
        return self.grid * self.grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)  # [B, C, h, w]
        return x.flatten(2).transpose(1, 2)  # [B, h*w, C]


@register_encoder("tiny_vit")
def tiny_vit(seed: int = 0, **kwargs) -> TinyViT:
    """Random tiny ViT (patch 8, image 32, width 32, 2 layers, 4 heads) -> ``[B, 16, 32]``."""
    with seeded(seed):
        return TinyViT(**kwargs)


@register_encoder("tiny_cnn")
def tiny_cnn(seed: int = 0, **kwargs) -> TinyCNN:
    """Random tiny conv encoder on 32x32 images -> ``[B, 16, 32]``."""
    with seeded(seed):
        return TinyCNN(**kwargs)
