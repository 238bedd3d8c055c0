"""Inference backends behind one interface (:class:`~multimodal.backends.base.Backend`).

- ``transformers``: HF ``generate`` on the torch model (training path, hub models, the reference)
- ``llamacpp``: the GGUF file run natively by llama.cpp, media fed as input embeddings

``auto`` picks llama.cpp for a GGUF LLM (an embedded catalogue name or a
``.gguf`` path) on the CPU when llama-cpp-python is installed, and transformers
otherwise. Stacks are assembled in :mod:`multimodal.stack`.
"""

from __future__ import annotations

import importlib.util

from ..errors import ModelLoadError
from .base import Backend, GenerationSettings, stop_token_ids, text_pieces

BACKENDS = ("auto", "llamacpp", "transformers")

__all__ = ["BACKENDS", "Backend", "GenerationSettings", "choose_backend", "llamacpp_available", "stop_token_ids",
           "text_pieces"]


def llamacpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def is_gguf_name(llm: str) -> bool:
    from ..embedded import is_embedded

    return is_embedded(llm) or llm.endswith(".gguf")


def choose_backend(requested: str, llm: str, device: str = "cpu") -> str:
    """The backend that runs ``llm``: ``"llamacpp"`` or ``"transformers"`` (see module docstring)."""
    if requested not in BACKENDS:
        raise ModelLoadError(f"Unknown backend {requested!r}; choose one of {', '.join(BACKENDS)}.")
    if requested == "transformers":
        return requested
    gguf = is_gguf_name(llm)
    if requested == "llamacpp":
        if not gguf:
            raise ModelLoadError(f"The llama.cpp backend runs GGUF files; '{llm}' is not one "
                                 "(use an embedded name or a .gguf path, or backend 'transformers').")
        if not llamacpp_available():
            raise ModelLoadError("The llama.cpp backend needs llama-cpp-python; `make install` builds it "
                                 "(or pip install llama-cpp-python).")
        return requested
    return "llamacpp" if gguf and device == "cpu" and llamacpp_available() else "transformers"
