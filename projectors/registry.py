"""Name -> builder registry for projectors; the registry is the list.

A builder is registered with a name pattern whose named groups become integer
keyword arguments (``mlp(?P<depth>\\d+)x_gelu`` builds ``mlp2x_gelu`` with
``depth=2``). Every other keyword argument of :func:`create_projector` is
forwarded to the builder and checked against its signature, so what
``projector.json`` records is exactly what built the module. Registering a
pattern twice warns (as timm's ``register_model`` does) and the later wins.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import warnings
from dataclasses import dataclass
from typing import Callable

from .base import Projector


@dataclass(frozen=True)
class _Entry:
    pattern: re.Pattern
    build: Callable[..., Projector]
    keywords: frozenset[str]
    """Keyword arguments the builder takes besides the pattern's groups."""


_REGISTRY: dict[str, _Entry] = {}
_NOT_BUILDERS = {"base", "registry", "io", "shipped"}


def register_projector(pattern: str):
    """Decorator: ``builder(in_dim, out_dim, **groups_and_kwargs) -> Projector`` builds names matching ``pattern``."""

    def deco(fn):
        compiled = re.compile(pattern)
        params = inspect.signature(fn).parameters
        keywords = frozenset(n for n, p in list(params.items())[2:] if p.kind is not p.VAR_KEYWORD)
        if pattern in _REGISTRY:
            warnings.warn(f"Projector pattern {pattern!r} registered twice; the later builder wins.", stacklevel=2)
        _REGISTRY[pattern] = _Entry(compiled, fn, keywords - set(compiled.groupindex))
        return fn

    return deco


def _load_builtins() -> None:
    """Import every projector module of this package: each registers its builders when imported."""
    for info in pkgutil.iter_modules([str(_package_dir())]):
        if info.name not in _NOT_BUILDERS and not info.name.startswith("_"):
            importlib.import_module(f"{__package__}.{info.name}")


def _package_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent


def create_projector(name: str, in_dim: int, out_dim: int, **kwargs) -> Projector:
    """Build projector ``name`` mapping ``[B, N, in_dim]`` to ``[B, M, out_dim]``.

    Raises ``KeyError`` for an unknown name (listing the known ones) and
    ``TypeError`` for a keyword argument the builder does not take.
    """
    _load_builtins()
    for entry in _REGISTRY.values():
        match = entry.pattern.fullmatch(name)
        if match is None:
            continue
        unknown = set(kwargs) - entry.keywords
        if unknown:
            raise TypeError(f"Projector {name!r} takes no {', '.join(sorted(unknown))}; "
                            f"it takes {', '.join(sorted(entry.keywords)) or 'no keyword arguments'}.")
        groups = {k: int(v) for k, v in match.groupdict().items()}
        proj = entry.build(int(in_dim), int(out_dim), **groups, **kwargs)
        proj.registry_name, proj.registry_kwargs = name, dict(kwargs)
        return proj
    raise KeyError(f"Unknown projector {name!r}. Known: {list_projectors()}")


def list_projectors() -> list[str]:
    """The registered names; a named group stands for any positive integer (``mlp{depth}x_gelu``)."""
    _load_builtins()
    return [re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern) for pattern in _REGISTRY]
