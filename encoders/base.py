"""The encoder contract shared by every modality.

Letters: B batch, N tokens, D feature width, C channels, H/W pixels, T samples.

An encoder maps preprocessed input to tokens ``[B, N, D]`` with no pooling and no
head. Its preprocessing travels with it as a pure function from decoded media
(:class:`~multimodal.io.types.MedicalImage` / :class:`~multimodal.io.types.AudioClip`)
to one un-batched tensor, so data loaders and the inference pipeline never need
to know which encoder they feed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

IMAGE = "image"
AUDIO = "audio"


@dataclass(frozen=True)
class ImagePreprocess:
    """Resize a ``[H, W, 3]`` float image in [0, 1] to ``size`` and normalise it."""

    size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __call__(self, pixels: np.ndarray) -> torch.Tensor:
        return image_to_tensor(pixels, self.size, self.mean, self.std)


def image_to_tensor(pixels, size: int, mean, std) -> torch.Tensor:
    """Pure preprocessing: ``[H, W, 3]`` float in [0, 1] -> ``[3, size, size]`` normalised.

    The short side is resized to ``size`` (bicubic, antialiased) and the centre
    cropped, as the ImageNet/CLIP recipes do.
    """
    x = torch.as_tensor(np.ascontiguousarray(pixels), dtype=torch.float32)
    if x.ndim == 2:
        x = x[..., None].expand(-1, -1, 3)
    x = x.permute(2, 0, 1)[None]  # [1, 3, H, W]
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[..., top : top + size, left : left + size].clamp(0, 1)  # [1, 3, S, S]
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - m) / s)[0]  # [3, S, S]


class Encoder(nn.Module):
    """Base class: subclasses set ``modality``, ``out_dim`` and ``preprocess``.

    ``forward(x) -> [B, N, D]``. ``labels(x)`` is optional: encoders that keep
    a classification head (ImageNet, Whisper's decoder) expose what it says so
    the pipeline can ground answers before a projector is trained.
    """

    modality: str = IMAGE
    out_dim: int = 0
    name: str = ""
    preprocess: Callable[..., torch.Tensor]

    def num_tokens(self) -> int | None:
        """Tokens per input when fixed (images), else None (audio varies)."""
        return None

    def describe(self, media) -> str | None:  # pragma: no cover - overridden
        """Text the encoder's own head says about ``media`` (labels, transcript)."""
        return None


# What some encoders can do besides ``forward``: declared here, checked with ``isinstance``.


@runtime_checkable
class Classifier(Protocol):
    """An image encoder that kept its trained classification head (ImageNet for ``medany-lite0``)."""

    trained_head: bool
    """False when the head is random (a backbone loaded without its classifier): its labels mean nothing."""
    label_subset: str | None
    """The label set the head predicts (``"imagenet-1k"``), or None when unknown."""

    def class_probs(self, image) -> torch.Tensor:
        """Class probabilities ``[K]`` of the head for one image."""

    def classify(self, image, top_k: int = 5) -> list[tuple[str, float]]:
        """The ``top_k`` ``(label, probability)`` pairs, best first."""


@runtime_checkable
class Transcriber(Protocol):
    """An audio encoder that kept its decoder: it can say what was said (Whisper)."""

    def describe(self, clip) -> str:
        """The transcript of a clip, in the language spoken."""

    def transcribe_segments(self, clip) -> list[tuple[float, float, str]]:
        """``[(start_s, end_s, text)]`` over the whole clip."""

    def transcribe(self, clip, language: str | None = None, translate: bool = True,
                   timestamps: bool = False) -> "Transcript":
        """What a clip says, the language it is said in, and (``translate``) its English translation."""


@dataclass(frozen=True)
class Transcript:
    """What a recording says: in the language spoken, with Whisper's English translation when that is another."""

    text: str
    language: str = "en"
    """The ISO 639-1 code Whisper detected (or was told): ``"es"``."""
    english: str = ""
    """Whisper's English translation; ``""`` for English speech, or when not asked for."""
    segments: tuple[tuple[float, float, str], ...] = ()
    """``(start_s, end_s, text)`` in the language spoken (one segment for a short clip without timestamps)."""
    language_probability: float | None = None
    """How sure language identification was (``None`` when the language was given or the model is English-only)."""
    english_segments: tuple[tuple[float, float, str], ...] = ()
    """The translation's segments (with ``timestamps``; ``()`` for English speech)."""

    @property
    def in_english(self) -> tuple[str, tuple[tuple[float, float, str], ...]]:
        """The text and segments in English: the translation of foreign speech, else the transcript itself."""
        return (self.english, self.english_segments) if self.english else (self.text, self.segments)

    @property
    def language_name(self) -> str:
        """``"Spanish"`` for ``"es"`` (Whisper's own table of its 99 languages)."""
        from .languages import language_name

        return language_name(self.language)


@runtime_checkable
class FramedAudio(Protocol):
    """An audio encoder with a fixed window whose valid output tokens depend on the clip's length."""

    def valid_frames(self, clip) -> int:
        """How many of the output tokens cover real audio."""


@dataclass
class EncoderInfo:
    """What ``medany info`` prints for an encoder."""

    name: str
    modality: str
    out_dim: int
    source: str
    params: int = 0
    extra: dict = field(default_factory=dict)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
