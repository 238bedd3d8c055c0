"""Projectors: ``[B, N, D_enc] -> [B, M, D_llm]``, behind a name registry."""

from .io import load_projector, save_projector
from .registry import create_projector, list_projectors
from .shipped import resolve_projector, shipped_projectors

__all__ = ["create_projector", "list_projectors", "load_projector", "resolve_projector", "save_projector",
           "shipped_projectors"]
