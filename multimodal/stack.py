"""The one place that assembles a stack: encoders, projectors, and the LLM on its backend.

The pipeline (:class:`~multimodal.pipeline.Assistant`), training, evaluation and
export all call :func:`build_stack`; the projector-width check is done here,
once, for every caller. A :class:`StackSpec` says what to build: the LLM and
backend, and per modality an encoder plus either a saved projector (a spec
``auto`` / ``none`` / shipped name / directory) or a fresh one (training).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .backends import Backend, choose_backend
from .config import StackConfig
from .errors import ModelLoadError

KINDS = ("image", "audio")


@dataclass
class MediaSpec:
    """One modality of a stack: its encoder and where its projector comes from."""

    encoder: str
    projector: str | None = "auto"
    """Saved projector: ``auto`` (shipped for this encoder + LLM, if any), ``none``, a shipped name or a directory."""
    fresh: str | None = None
    """Registry name of a freshly initialised projector (training); overrides ``projector``."""
    fresh_kwargs: dict = field(default_factory=dict)
    seed: int = 0
    """Seeds the fresh projector's initialisation."""


@dataclass
class StackSpec:
    """Everything :func:`build_stack` needs."""

    llm: str = "embedded"
    media: dict[str, MediaSpec] = field(default_factory=dict)
    backend: str = "auto"
    dtype: str = "float32"
    device: str = "cpu"
    threads: int = 0
    context: int = 4096

    @classmethod
    def from_config(cls, config: StackConfig) -> "StackSpec":
        """The inference stack a :class:`StackConfig` describes (an empty encoder name leaves that modality out)."""
        media = {kind: MediaSpec(enc, proj) for kind, enc, proj in (
            ("image", config.vision, config.image_projector), ("audio", config.speech, config.audio_projector)) if enc}
        return cls(llm=config.llm, media=media, backend=config.backend, dtype=config.dtype, device=config.device,
                   threads=config.threads, context=config.context)


    @classmethod
    def for_training(cls, config, kinds: list[str]) -> "StackSpec":
        """The stack a training run (:class:`~multimodal.train_config.TrainConfig`) builds: the transformers
        backend (it trains), each modality's encoder, and its projector fresh (seeded) or from ``init_*``."""
        media = {}
        for kind in kinds:
            name = config.encoder_for(kind)
            if not name:
                raise ModelLoadError(f"The data has {kind} samples but the config names no {kind}_encoder.")
            init = config.init_projector_for(kind)
            media[kind] = (MediaSpec(name, projector=init) if init else
                           MediaSpec(name, fresh=config.projector_for(kind), seed=config.seed + KINDS.index(kind),
                                     fresh_kwargs=config.projector_kwargs.get(kind, {})))
        return cls(llm=config.llm, media=media, backend="transformers")


@dataclass
class Stack:
    """An assembled stack.

    ``model`` holds the encoders, projectors and (on the transformers backend)
    the torch LLM; on llama.cpp ``model.llm`` is None and ``backend`` runs the
    GGUF. ``encoders`` are the real encoders (``model`` holds identities when it
    was built for a feature cache). ``info`` is what ``medany info`` prints.
    """

    model: object
    backend: Backend
    encoders: dict[str, nn.Module]
    info: dict

    @property
    def tokenizer(self):
        return self.backend.tokenizer


def build_stack(spec: StackSpec, *, feature_cache: bool = False,
                check_media: Callable[[dict, dict], None] | None = None) -> Stack:
    """Build ``spec``: encoders and projectors first, then the LLM, then the width check.

    ``check_media(encoders, projectors)`` runs before the LLM is loaded (export
    refuses unexportable parts without loading a large LLM). With
    ``feature_cache`` the model gets identity encoders (it is fed cached tokens).
    """
    from .model import MedAnyModel

    info: dict = {}
    encoders, projectors, proj_names = {}, {}, {}
    for kind, media in spec.media.items():
        if kind not in KINDS:
            raise ModelLoadError(f"Unknown modality {kind!r}; expected one of {', '.join(KINDS)}.")
        encoders[kind], info[kind] = _encoder(media.encoder)
        found = _projector(media, spec.llm, info[kind])
        if found is not None:
            projectors[kind], proj_names[kind] = found
    if check_media is not None:
        check_media(encoders, projectors)

    backend_name = choose_backend(spec.backend, spec.llm, spec.device)
    llm, tokenizer, llm_info, runtime = _llm(spec, backend_name)
    info["llm"] = llm_info
    hidden = runtime.hidden_size if runtime is not None else llm.get_input_embeddings().embedding_dim
    for kind, proj in projectors.items():
        _check_width(kind, proj, encoders[kind], hidden, spec, info[kind].get("projector") or {}, proj_names[kind])
    for kind, media in spec.media.items():
        if media.fresh:
            projectors[kind] = _fresh(media, encoders[kind].out_dim, hidden)
    in_model = {k: nn.Identity() for k in encoders} if feature_cache else encoders
    model = MedAnyModel(llm, tokenizer, in_model, projectors).to(spec.device).eval()
    if runtime is None:
        from .backends.hf import TransformersBackend

        runtime = TransformersBackend(model)
    info["backend"] = runtime.describe()
    return Stack(model, runtime, encoders, info)


def _encoder(name: str):
    from encoders import create_encoder

    t0 = time.perf_counter()
    enc = create_encoder(name).eval()
    return enc, {"name": name, "load_s": time.perf_counter() - t0, "out_dim": enc.out_dim,
                 "params": sum(p.numel() for p in enc.parameters())}


def _projector(media: MediaSpec, llm: str, info: dict):
    """``(projector, folder name)`` of the saved projector ``media`` names, or None."""
    from projectors import load_projector, resolve_projector

    if media.fresh:
        return None  # created once the LLM's width is known (_fresh)
    from .quantize import base_name

    # a quantized form (medany quantize) takes the projectors of the model it was made from
    folder = resolve_projector(media.projector, encoder=base_name(media.encoder), llm=base_name(llm))
    if folder is None:
        return None
    proj, cfg = load_projector(folder)
    info["projector"] = cfg
    return proj, folder.name


def _fresh(media: MediaSpec, in_dim: int, hidden: int):
    from projectors import create_projector

    from .rng import seeded

    with seeded(media.seed):
        return create_projector(media.fresh, in_dim, hidden, **media.fresh_kwargs)


def _llm(spec: StackSpec, backend: str):
    """``(torch LLM or None, tokenizer, LLMInfo, llama.cpp backend or None)``."""
    from .backbone import LLMInfo, gguf_source, load_gguf_tokenizer, load_llm, resolve_gguf

    if backend == "transformers":
        llm, tok, llm_info = load_llm(spec.llm, dtype=getattr(torch, spec.dtype))
        return llm, tok, llm_info, None
    from .backends.llamacpp import LlamaCppBackend

    t0 = time.perf_counter()
    gguf = resolve_gguf(spec.llm)
    tok = load_gguf_tokenizer(gguf)
    runtime = LlamaCppBackend(gguf, tok, n_ctx=spec.context, threads=spec.threads)
    params = int(runtime.lib.llama_model_n_params(runtime.llama.model))
    llm_info = LLMInfo(spec.llm, gguf_source(spec.llm, gguf), params, time.perf_counter() - t0, cached=True,
                       extra={"path": str(gguf), "bytes": gguf.stat().st_size})
    return None, tok, llm_info, runtime


def _check_width(kind: str, proj, encoder, hidden: int, spec: StackSpec, cfg: dict, name: str) -> None:
    if (proj.in_dim, proj.out_dim) != (encoder.out_dim, hidden):
        raise ModelLoadError(
            f"The {kind} projector in '{name}' maps {proj.in_dim} -> {proj.out_dim} features "
            f"(trained for {cfg.get('encoder')} + {cfg.get('llm')}), but this stack needs "
            f"{encoder.out_dim} ({spec.media[kind].encoder}) -> {hidden} ({spec.llm}).")
