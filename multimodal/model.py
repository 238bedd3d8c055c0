"""The fusion model: encoders -> projectors -> spliced into one causal LLM.

Letters: B batch (conversations), L sequence, D LLM width, n media items of one
kind in the batch, N encoder tokens per item, M projected tokens per item,
T = total projected tokens of one kind in the batch.

Media features replace the sentinel ids written by
:func:`multimodal.template.encode_conversation`, in reading order across the
batch, with one vectorized ``masked_scatter`` per modality.
"""

from __future__ import annotations

import inspect
import warnings
from functools import cached_property
from typing import Mapping

import torch
from torch import Tensor, nn

from .errors import ModelLoadError, PlaceholderMismatchError
from .kernels import register_hf_attention, span_ids_from_mask, use_span_ids
from .media import MediaBatch
from .template import IGNORE_INDEX, MEDIA_TOKEN_IDS

# We generate from embeddings, so a repetition penalty applies to new tokens only. That is
# what we want (quoting the transcript or the findings is fine), so HF's notice is noise.
warnings.filterwarnings("ignore", message="Passing `repetition_penalty` with `inputs_embeds`")


def splice_media(embeds: Tensor, input_ids: Tensor, kind: str, feats: Tensor | None) -> Tensor:
    """Write ``feats`` ``[T, D]`` into ``embeds`` ``[B, L, D]`` where ``input_ids`` holds ``kind``'s sentinel."""
    mask = input_ids == MEDIA_TOKEN_IDS[kind]  # [B, L]
    slots = int(mask.sum())
    given = 0 if feats is None else int(feats.shape[0])
    if slots != given:
        raise PlaceholderMismatchError(
            f"The prompt reserves {slots} {kind} token(s) but the {kind} inputs produced {given}."
        )
    if slots == 0:
        return embeds
    return embeds.masked_scatter(mask.unsqueeze(-1), feats.to(embeds.dtype))


def per_sample_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Each row's mean cross-entropy ``[B]`` over its supervised targets (logits ``[B, K, V]``, targets ``[B, K]``)."""
    b, k = targets.shape
    ce = nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX,
                                     reduction="none").view(b, k)  # [B, K], 0 where ignored
    return ce.sum(1) / (targets != IGNORE_INDEX).sum(1).clamp_min(1)


class MedAnyModel(nn.Module):
    """One LLM fed by any number of (encoder, projector) pairs, keyed by modality.

    Encoders and the LLM are frozen by default (stage-1 alignment); only the
    projectors train. ``encoders`` / ``projectors`` map ``"image"``/``"audio"``
    to modules; a modality without a projector accepts no media tokens.

    With ``image_attention="bidirectional"`` (the default) the LLM runs on the
    ``medany_spans`` attention: tokens of one image attend to each other in both
    directions while text stays causal (Gemma 3 style); adjacent ``<image>``
    placeholders form one span. ``"causal"`` keeps the LLM's own attention.
    A prompt without images is plain causal attention either way.

    ``llm=None`` builds the media half only (encoders and projectors): the
    stack then runs its LLM in another runtime (the llama.cpp backend) and
    feeds it :meth:`encode_all`'s features; the LLM methods refuse.
    """

    def __init__(
        self,
        llm: nn.Module | None,
        tokenizer,
        encoders: Mapping[str, nn.Module] | None = None,
        projectors: Mapping[str, nn.Module] | None = None,
        *,
        freeze_encoders: bool = True,
        freeze_llm: bool = True,
        image_attention: str = "bidirectional",
    ):
        super().__init__()
        if image_attention not in ("bidirectional", "causal"):
            raise ValueError(f"image_attention must be 'bidirectional' or 'causal', got {image_attention!r}")
        self.image_attention = image_attention
        if image_attention == "bidirectional" and llm is not None:
            llm.set_attn_implementation(register_hf_attention())
        self.llm = llm
        self.tokenizer = tokenizer
        self.encoders = nn.ModuleDict(dict(encoders or {}))
        self.projectors = nn.ModuleDict(dict(projectors or {}))
        for kind in self.projectors:
            if kind not in MEDIA_TOKEN_IDS:
                raise KeyError(f"Unknown modality {kind!r}; expected one of {sorted(MEDIA_TOKEN_IDS)}")
        if freeze_encoders:
            self.encoders.requires_grad_(False)
        if freeze_llm and llm is not None:
            self.llm.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        param = next(self.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    def _require_llm(self) -> nn.Module:
        if self.llm is None:
            raise ModelLoadError("This stack runs its LLM outside torch (llama.cpp backend); "
                                 "use backend='transformers' to train or run it here.")
        return self.llm

    def token_counts(self, kind: str, n_tokens: list[int]) -> list[int]:
        """LLM tokens each medium of ``kind`` occupies, given its encoder token count."""
        proj = self.projectors[kind]
        return [proj.num_output_tokens(n) for n in n_tokens]

    def encode(self, kind: str, pixels_or_mels: Tensor, valid_tokens: list[int] | None = None) -> Tensor:
        """Encode and project ``n`` items of ``kind``; returns the flat features ``[T, D]``.

        ``valid_tokens[i]`` trims item i's encoder output to its real length
        (Whisper pads every clip to 30 s); the projector still sees the whole
        window so its learned positions stay consistent.
        """
        encoder, proj = self.encoders[kind], self.projectors[kind]
        train_encoder = torch.is_grad_enabled() and any(p.requires_grad for p in encoder.parameters())
        with torch.set_grad_enabled(train_encoder):
            tokens = encoder(pixels_or_mels.to(self.device))  # [n, N, D_enc]
        if getattr(proj, "takes_token_mask", False):  # an MoE projector counts its expert load over real tokens
            projected = proj(tokens, token_mask=self._valid_mask(kind, valid_tokens, tokens.shape[1], tokens.device))
        else:
            projected = proj(tokens)  # [n, M, D]
        if valid_tokens is None:
            return projected.reshape(-1, projected.shape[-1])  # [T, D]
        return projected[self._valid_mask(kind, valid_tokens, tokens.shape[1], projected.device)]  # [T, D]

    def _valid_mask(self, kind: str, valid_tokens: list[int] | None, n_in: int, device) -> Tensor | None:
        """``[n, M]``: which projected tokens of each item are real (None when all are)."""
        if valid_tokens is None:
            return None
        keep = torch.tensor(self.token_counts(kind, valid_tokens), device=device)
        m = self.projectors[kind].num_output_tokens(n_in)
        return torch.arange(m, device=device) < keep[:, None]  # [n, M]

    def embed(self, input_ids: Tensor, media: Mapping[str, Tensor] | None = None) -> Tensor:
        """Token embeddings ``[B, L, D]`` with every modality's features spliced in."""
        media = media or {}
        embeds = self._require_llm().get_input_embeddings()(input_ids.clamp_min(0))  # [B, L, D]
        for kind in MEDIA_TOKEN_IDS:
            embeds = splice_media(embeds, input_ids, kind, media.get(kind))
        return embeds

    def encode_all(self, media: MediaBatch | None) -> dict[str, Tensor]:
        """A :class:`~multimodal.media.MediaBatch` -> ``{kind: [T, D]}`` projected features."""
        return {kind: self.encode(kind, m.x, m.valid) for kind, m in (media or MediaBatch()).items()}

    def span_ids(self, input_ids: Tensor) -> Tensor | None:
        """Per-token image span ids ``[B, L]`` for bidirectional image attention, or None."""
        is_image = input_ids == MEDIA_TOKEN_IDS["image"]  # [B, L]
        if self.image_attention != "bidirectional" or not bool(is_image.any()):
            return None
        return span_ids_from_mask(is_image)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, labels: Tensor | None = None,
                media: MediaBatch | None = None, per_sample: bool = False):
        """Teacher-forced pass; returns the LLM's output (``.loss`` when ``labels`` are given).

        With ``labels`` the vocabulary head runs only at positions that predict a
        supervised token (``.logits`` is ``[B, K, V]`` over those K positions): a
        chat prompt is mostly system text, media and question, whose logits the
        loss never reads. The loss is the LLM's own token-mean cross-entropy;
        with ``per_sample`` it is ``[B]``, each conversation's own token mean
        (what differentially private training clips and membership tests score).
        """
        embeds = self.embed(input_ids, self.encode_all(media))
        with use_span_ids(self.span_ids(input_ids)):
            if labels is not None and per_sample and not self._head_takes_positions:
                out = self.llm(inputs_embeds=embeds, attention_mask=attention_mask)
                out.loss = per_sample_cross_entropy(out.logits[:, :-1], labels[:, 1:])
                return out
            if labels is None or not self._head_takes_positions:
                return self.llm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels)
            targets = labels[:, 1:]  # [B, L-1]: position p predicts token p+1
            keep = (targets != IGNORE_INDEX).any(0).nonzero().flatten()  # [K], union over the batch
            out = self.llm(inputs_embeds=embeds, attention_mask=attention_mask, logits_to_keep=keep)
        logits = out.logits  # [B, K, V]
        if per_sample:
            out.loss = per_sample_cross_entropy(logits, targets[:, keep])
            return out
        out.loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), targets[:, keep].flatten(),
                                               ignore_index=IGNORE_INDEX)
        return out

    @cached_property
    def _head_takes_positions(self) -> bool:
        """Whether the LLM's forward accepts ``logits_to_keep`` as a tensor of positions (recent HF causal LMs)."""
        base = self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm  # through PEFT
        return "logits_to_keep" in inspect.signature(base.forward).parameters

    @torch.no_grad()
    def generate(self, input_ids: Tensor, attention_mask: Tensor | None = None, media: MediaBatch | None = None,
                 **gen_kwargs) -> Tensor:
        """Generated token ids ``[B, new]`` (prompt excluded); ``gen_kwargs`` go to HF ``generate``."""
        return self.generate_from(input_ids, self.encode_all(media), attention_mask, **gen_kwargs)

    @torch.no_grad()
    def generate_from(self, input_ids: Tensor, media: Mapping[str, Tensor] | None = None,
                      attention_mask: Tensor | None = None, **gen_kwargs) -> Tensor:
        """As :meth:`generate`, from media already encoded (``{kind: [T, D]}``, :meth:`encode_all`)."""
        embeds = self.embed(input_ids, media)
        if attention_mask is None:
            attention_mask = torch.ones(input_ids.shape, dtype=torch.long, device=input_ids.device)
        gen_kwargs.setdefault("pad_token_id", self.tokenizer.pad_token_id)
        with use_span_ids(self.span_ids(input_ids)):
            return self.llm.generate(inputs_embeds=embeds, attention_mask=attention_mask, **gen_kwargs)

    def logits_from(self, input_ids: Tensor, media: Mapping[str, Tensor] | None = None) -> Tensor:
        """Logits ``[B, L, V]`` of a prompt with media already encoded (differentiable in ``media`` when grad is
        enabled: explanations take gradients through it)."""
        embeds = self.embed(input_ids, media)
        with use_span_ids(self.span_ids(input_ids)):
            return self.llm(inputs_embeds=embeds).logits
