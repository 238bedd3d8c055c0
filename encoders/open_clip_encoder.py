"""Any open_clip image tower as a token encoder (BiomedCLIP, CLIP, SigLIP, CoCa ...).

Letters: B batch, C channels, h/w token grid, N tokens, D token width, S image side.

Names (see :mod:`encoders.registry`):

* ``open_clip:<model>`` for a built-in config (``open_clip:ViT-B-32``); weights via
  ``pretrained=<tag or file>`` (e.g. ``"laion2b_s34b_b79k"``), random when omitted.
* ``open_clip:hf-hub:<org/repo>`` / ``open_clip:local-dir:<dir>``: config and weights
  from the Hugging Face hub (internet needed once) or a local export, e.g.
  ``open_clip:hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224``.
* ``tiny_open_clip``: a 2-layer, 64-wide random ViT on 64x64 images (tests).

Only the image tower is kept (the text tower is dropped after loading). Tokens
are the tower's last-layer patch tokens, before pooling and projection:

* open_clip ``VisionTransformer``: the ``output_tokens=True`` tokens (after
  ``ln_post``, class token removed) -> ``[B, h*w, width]``; towers with an
  attentional pooler (CoCa) give their ``n_queries`` pooled tokens instead.
* ``TimmModel`` (BiomedCLIP's ViT-B/16): ``trunk.forward_features`` without the
  prefix tokens -> ``[B, 196, 768]``, as :mod:`encoders.timm_encoder` does.
* ``ModifiedResNet`` (OpenAI RN50 ...): the layer4 map ``[B, C, h, w] -> [B, h*w, C]``.
"""

from __future__ import annotations

import json

import torch

from multimodal.errors import ModelLoadError, require
from multimodal.paths import atomic_write_bytes, cache_dir
from multimodal.rng import seeded

from .base import Encoder, ImagePreprocess
from .registry import register_encoder, register_family
from .timm_encoder import features_to_tokens, probe_num_tokens

TINY_CLIP_NAME = "medany-tiny-clip"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
}


def add_open_clip_config(name: str, model_cfg: dict) -> None:
    """Make ``open_clip:<name>`` resolvable from an in-memory config (written to our cache)."""
    open_clip = require("open_clip", "all")
    if open_clip.factory.get_model_config(name) == model_cfg:
        return
    path = cache_dir("open_clip", "configs") / f"{name}.json"
    atomic_write_bytes(path, json.dumps(model_cfg, indent=1).encode())
    open_clip.add_model_config(path)


def _size(value) -> int:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ModelLoadError("Only square image towers are supported.")
        value = value[0]
    return int(value)


class OpenClipEncoder(Encoder):
    """An open_clip image tower: ``[B, 3, S, S] -> [B, N, D]`` (see the module docstring)."""

    def __init__(self, visual: torch.nn.Module, name: str = "", source: str = ""):
        super().__init__()
        open_clip = require("open_clip", "all")
        self.visual = visual.eval()
        self.name = name
        self.source = source
        if isinstance(visual, open_clip.transformer.VisionTransformer):
            self.kind = "vit"
            visual.output_tokens = True  # forward returns (pooled, tokens); pooled is ignored
            attn_pool = getattr(visual, "attn_pool", None)
            self.out_dim = attn_pool.ln_q.normalized_shape[0] if attn_pool is not None else visual.transformer.width
        elif isinstance(visual, open_clip.timm_model.TimmModel):
            self.kind = "timm"
            self.out_dim = int(visual.trunk.num_features)
        elif isinstance(visual, open_clip.modified_resnet.ModifiedResNet):
            self.kind = "resnet"
            self.out_dim = int(visual.layer4[-1].conv3.out_channels)
        else:
            raise ModelLoadError(f"Unsupported open_clip image tower {type(visual).__name__}.")
        cfg = getattr(visual, "preprocess_cfg", {}) or {}
        self.preprocess = ImagePreprocess(
            size=_size(cfg.get("size", visual.image_size)),
            mean=tuple(float(m) for m in cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))),
            std=tuple(float(s) for s in cfg.get("std", (0.26862954, 0.26130258, 0.27577711))),
        )
        self._num_tokens: int | None = None
        self.eval()  # wrapper and tower agree, so eval_mode() restores the right mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed images ``[B, 3, S, S]`` -> tokens ``[B, N, D]``."""
        v = self.visual
        if self.kind == "vit":
            _, tokens = v(x)  # [B, N, D] (or [B, 1 + N, D] when pool_type == "none")
            if v.attn_pool is None and v.pool_type == "none":
                tokens = tokens[:, 1:]  # drop the class token, as the pooled types do
            return tokens
        if self.kind == "timm":
            trunk = v.trunk
            feats = trunk.forward_features(x)
            nhwc = getattr(trunk, "output_fmt", "NCHW") == "NHWC"
            return features_to_tokens(feats, int(getattr(trunk, "num_prefix_tokens", 0) or 0), nhwc)
        x = v.layer4(v.layer3(v.layer2(v.layer1(v.stem(x)))))  # [B, C, h, w]
        return x.flatten(2).transpose(1, 2)  # [B, h*w, C]

    def num_tokens(self) -> int:
        if self._num_tokens is None:
            self._num_tokens = probe_num_tokens(self, self.preprocess.size)
        return self._num_tokens


@register_family("open_clip")
def build_open_clip_encoder(model_name: str, pretrained: str | None = None, image_size: int | None = None,
                            **open_clip_kwargs) -> OpenClipEncoder:
    """``open_clip:<model>`` -> :class:`OpenClipEncoder` via ``open_clip.create_model_and_transforms``."""
    open_clip = require("open_clip", "all")
    hub = model_name.startswith(("hf-hub:", "local-dir:"))
    try:
        model, _, _ = open_clip.create_model_and_transforms(
            model_name,
            pretrained=None if hub else pretrained,  # hub repos carry their own weights
            force_image_size=image_size,
            **open_clip_kwargs,
        )
    except (RuntimeError, FileNotFoundError, OSError, ValueError) as exc:
        where = "the Hugging Face hub (internet is needed once)" if hub else "open_clip"
        raise ModelLoadError(f"Could not load the open_clip model {model_name!r} from {where}.") from exc
    weights = "hub weights" if hub else (f"weights {pretrained}" if pretrained else "random init")
    return OpenClipEncoder(model.visual, name=f"open_clip:{model_name}", source=f"open_clip {model_name}, {weights}")


@register_encoder("tiny_open_clip")
def tiny_open_clip(seed: int = 0) -> OpenClipEncoder:
    """Random 2-layer open_clip ViT (width 64, patch 16, image 64) -> ``[B, 16, 64]``."""
    add_open_clip_config(TINY_CLIP_NAME, TINY_CLIP_CONFIG)
    with seeded(seed):
        enc = build_open_clip_encoder(TINY_CLIP_NAME)
    enc.name = "tiny_open_clip"
    return enc
