"""Linear and MLP projectors (LLaVA's ``linear`` and ``mlp{N}x_gelu``).

Letters: B batch, N tokens, D_in encoder width, D_out LLM width.
"""

from __future__ import annotations

from torch import Tensor, nn

from .base import Projector
from .registry import register_projector


class MLPProjector(Projector):
    """``[B, N, D_in] -> [B, N, D_out]``: ``depth`` linear layers with GELU between.

    ``depth=1`` is the plain linear projector of LLaVA-1; ``depth=2`` is
    LLaVA-1.5's ``mlp2x_gelu``.
    """

    def __init__(self, in_dim: int, out_dim: int, depth: int = 2):
        super().__init__(in_dim, out_dim)
        if depth < 1:
            raise ValueError(f"MLP projector depth must be >= 1, got {depth}")
        layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
        for _ in range(depth - 1):
            layers += [nn.GELU(), nn.Linear(out_dim, out_dim)]
        self.net = nn.Sequential(*layers)
        self.depth = depth

    def forward(self, x: Tensor) -> Tensor:  # [B, N, D_in] -> [B, N, D_out]
        return self.net(x)


@register_projector(r"linear")
def linear(in_dim: int, out_dim: int) -> MLPProjector:
    return MLPProjector(in_dim, out_dim, depth=1)


@register_projector(r"mlp(?P<depth>\d+)x_gelu")
def mlp_gelu(in_dim: int, out_dim: int, depth: int) -> MLPProjector:
    return MLPProjector(in_dim, out_dim, depth=depth)
