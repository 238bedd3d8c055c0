"""What every projector is: a module mapping encoder tokens into the LLM's embedding space.

Letters: B batch, N tokens in, M tokens out, D_in encoder width, D_out LLM width.
"""

from __future__ import annotations

from torch import Tensor, nn


class Projector(nn.Module):
    """``[B, N, D_in] -> [B, M, D_out]``; subclasses build their layers and implement :meth:`forward`.

    ``registry_name`` and ``registry_kwargs`` are set by
    :func:`~projectors.registry.create_projector`: with the widths they are the
    whole :meth:`config` that ``projector.json`` records and loading rebuilds.
    """

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        self.registry_name: str = type(self).__name__
        self.registry_kwargs: dict = {}

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def num_output_tokens(self, n_in: int) -> int:
        """M, the number of tokens out for ``n_in`` tokens in (the LLM reserves that many positions)."""
        return n_in

    def config(self) -> dict:
        """``{"name", "in_dim", "out_dim", "kwargs"}``: what :func:`create_projector` needs to rebuild it."""
        return {"name": self.registry_name, "in_dim": self.in_dim, "out_dim": self.out_dim,
                "kwargs": dict(self.registry_kwargs)}
