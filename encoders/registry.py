"""Name -> builder registry for encoders.

Names are ``family:model`` (``timm:convnext_tiny``, ``open_clip:ViT-B-32``,
``open_clip:hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224``,
``whisper:tiny.en``, ``whisper:/path/to/ckpt.pt``) or a registered alias such as
``medany-lite0`` (the embedded default) and the ``tiny_*`` test encoders.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from pathlib import Path
from typing import Callable

from .base import Encoder

_FAMILIES: dict[str, Callable[..., Encoder]] = {}
_ALIASES: dict[str, Callable[..., Encoder]] = {}
_NOT_BUILDERS = {"base", "registry"}


def _register(table: dict, key: str, what: str):
    def deco(fn):
        if key in table and table[key] is not fn:
            warnings.warn(f"Encoder {what} {key!r} registered twice; the later builder wins.", stacklevel=3)
        table[key] = fn
        return fn

    return deco


def register_family(prefix: str):
    """Register ``builder(model_name, **kw)`` for names ``prefix:model_name``."""
    return _register(_FAMILIES, prefix, "family")


def register_encoder(name: str):
    """Register ``builder(**kw)`` under an exact alias."""
    return _register(_ALIASES, name, "name")


def _load_builtins() -> None:
    """Import every module of this package once: each registers its builders when imported. Each imports
    its heavy dependency (timm, open_clip, whisper) lazily, so this costs only torch."""
    for info in pkgutil.iter_modules([str(Path(__file__).resolve().parent)]):
        if info.name not in _NOT_BUILDERS and not info.name.startswith("_"):
            importlib.import_module(f"{__package__}.{info.name}")


def create_encoder(name: str, **kwargs) -> Encoder:
    """Build an encoder by registry name; see the module docstring for the forms."""
    _load_builtins()
    if name in _ALIASES:
        return _ALIASES[name](**kwargs)
    family, sep, model = name.partition(":")
    if sep and family in _FAMILIES:
        return _FAMILIES[family](model, **kwargs)
    raise KeyError(
        f"Unknown encoder {name!r}. Use one of {sorted(_ALIASES)} or a "
        f"'family:model' name with family in {sorted(_FAMILIES)}."
    )


def list_encoders() -> list[str]:
    """Registered aliases plus the ``family:`` prefixes that take any model name."""
    _load_builtins()
    return sorted(_ALIASES) + [f"{f}:<model>" for f in sorted(_FAMILIES)]
