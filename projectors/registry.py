"""Name -> builder registry for projectors.

Names: ``linear``, ``mlp{N}x_gelu`` (any N >= 1), ``resampler``,
``concat{k}`` / ``conv{k}`` (speech frame downsamplers, any k >= 1). Every
builder takes ``(in_dim, out_dim, **kwargs)``; the kwargs are what the saved
JSON config records, so :func:`create_projector` can rebuild it exactly.
"""

from __future__ import annotations

import re

from torch import nn

from .downsample import ConcatDownsampler, ConvDownsampler
from .linear import MLPProjector
from .resampler import Resampler

_PATTERNS: list[tuple[re.Pattern, object]] = [
    (re.compile(r"linear"), lambda m, i, o, **kw: MLPProjector(i, o, depth=1)),
    (re.compile(r"mlp(\d+)x_gelu"), lambda m, i, o, **kw: MLPProjector(i, o, depth=int(m.group(1)))),
    (re.compile(r"resampler"), lambda m, i, o, **kw: Resampler(i, o, **kw)),
    (re.compile(r"concat(\d+)"), lambda m, i, o, **kw: ConcatDownsampler(i, o, k=int(m.group(1)))),
    (re.compile(r"conv(\d+)"), lambda m, i, o, **kw: ConvDownsampler(i, o, k=int(m.group(1)))),
]


def create_projector(name: str, in_dim: int, out_dim: int, **kwargs) -> nn.Module:
    """Build projector ``name`` mapping ``[B, N, in_dim]`` to ``[B, M, out_dim]``."""
    for pattern, build in _PATTERNS:
        match = pattern.fullmatch(name)
        if match:
            proj = build(match, in_dim, out_dim, **kwargs)
            proj.registry_name = name
            proj.registry_kwargs = dict(kwargs)
            return proj
    raise KeyError(f"Unknown projector {name!r}. Known: {list_projectors()}")


def list_projectors() -> list[str]:
    """Projector names (``N`` and ``k`` stand for any positive integer)."""
    return ["linear", "mlp{N}x_gelu", "resampler", "concat{k}", "conv{k}"]
