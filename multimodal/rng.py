"""Deterministic construction without disturbing the caller's random state."""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int):
    """Run the block with the CPU RNG seeded to ``seed``, restoring the global RNG state after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
