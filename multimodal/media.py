"""What the model eats for its media: one small dataclass per modality, and how to make it.

A :class:`MediaBatch` travels from the pipeline (:func:`prepare_media`), the data
collator and the training loop to :meth:`multimodal.model.MedAnyModel.encode_all`:
per modality the stacked encoder inputs, how many encoder tokens of each item
are real, and how many LLM positions each item fills (what the chat template
reserves). :func:`media_loader` and :func:`encoder_token_counts` turn files into
those inputs for training and evaluation alike.

Letters: n items of one modality, N encoder tokens, T LLM positions in all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

import torch
from torch import Tensor

from encoders.base import FramedAudio


@dataclass
class MediaInputs:
    """The inputs of ``n`` items of one modality."""

    x: Tensor
    """``[n, ...]``: preprocessed pixels or mels, or cached encoder tokens ``[n, N, D_enc]``."""
    valid: list[int] | None = None
    """Encoder tokens of each item that cover real input (Whisper pads to 30 s); None: all of them."""
    llm_tokens: list[int] = field(default_factory=list)
    """LLM positions each item fills (the projector's output count)."""

    def to(self, device) -> "MediaInputs":
        return MediaInputs(self.x.to(device), self.valid, self.llm_tokens)


@dataclass
class MediaBatch:
    """Every modality's :class:`MediaInputs`, media in reading order within each."""

    kinds: dict[str, MediaInputs] = field(default_factory=dict)

    def __getitem__(self, kind: str) -> MediaInputs:
        return self.kinds[kind]

    def __contains__(self, kind: str) -> bool:
        return kind in self.kinds

    def __iter__(self) -> Iterator[str]:
        return iter(self.kinds)

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def items(self):
        return self.kinds.items()

    def to(self, device) -> "MediaBatch":
        return MediaBatch({k: v.to(device) for k, v in self.kinds.items()})

    @property
    def token_counts(self) -> dict[str, list[int]]:
        """``{kind: [LLM positions per item]}``, as :func:`multimodal.template.encode_conversation` takes it."""
        return {k: list(v.llm_tokens) for k, v in self.kinds.items()}

    @classmethod
    def of(cls, **tensors: Tensor) -> "MediaBatch":
        """A batch of whole inputs (every encoder token real), e.g. ``MediaBatch.of(image=pixels)``."""
        return cls({k: MediaInputs(x) for k, x in tensors.items()})


def prepare_media(model, encoders: Mapping[str, object], media: Mapping[str, Sequence]) -> MediaBatch:
    """Decoded media (``{kind: [MedicalImage | AudioClip]}``) -> the :class:`MediaBatch` the model takes.

    Token counts come from the encoders' contracts (``num_tokens()`` for a fixed
    image grid, ``valid_frames(clip)`` for framed audio): no encoder runs here.
    """
    out = {}
    for kind, items in media.items():
        if not items:
            continue
        enc = encoders[kind]
        if kind == "image":
            x = torch.stack([enc.preprocess(im.pixels) for im in items])  # [n, 3, S, S]
            n = enc.num_tokens()
            if n is None:
                raise ValueError(f"The image encoder {enc.name!r} does not say how many tokens it "
                                 "emits (num_tokens()); an image encoder must.")
            valid, n_enc = None, [n] * len(items)
        else:
            x = torch.stack([enc.preprocess(clip) for clip in items])  # [n, mels, frames]
            valid = [enc.valid_frames(clip) for clip in items] if isinstance(enc, FramedAudio) else None
            n_enc = valid or [enc.num_tokens()] * len(items)
        out[kind] = MediaInputs(x, valid, model.token_counts(kind, n_enc))
    return MediaBatch(out)


def media_loader(encoders: dict, device: torch.device):
    """``(media_fn, encode_fn)``: one file -> model input, and files -> encoder tokens (for the feature cache)."""
    from .io import load_audio, load_image

    def media_fn(kind: str, path):
        enc = encoders[kind]
        if kind == "image":
            return enc.preprocess(load_image(path).pixels), None
        clip = load_audio(path)
        valid = enc.valid_frames(clip) if isinstance(enc, FramedAudio) else None
        return enc.preprocess(clip), valid

    def encode_fn(kind: str, paths):
        items = [media_fn(kind, p) for p in paths]
        x = torch.stack([t for t, _ in items]).to(device)  # [n, ...]
        return encoders[kind](x), [v for _, v in items]  # [n, N, D]

    return media_fn, encode_fn


def encoder_token_counts(encoders: dict, media_fn, samples, cache=None) -> dict[str, int]:
    """Encoder tokens per item for each kind (needed when the loader reports no valid count)."""
    counts = {}
    for kind, enc in encoders.items():
        n = enc.num_tokens()
        if n is None:
            first = next(f for s in samples for f in s.media.get(kind, []))
            if cache is not None:
                n = int(cache[kind].get(first)[0].shape[0])
            else:
                with torch.no_grad():
                    n = int(enc(media_fn(kind, first)[0][None]).shape[1])
        counts[kind] = n
    return counts
