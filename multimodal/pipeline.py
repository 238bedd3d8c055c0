"""The inference pipeline: files and a question in, streamed answer out.

``Assistant`` owns one loaded stack (:class:`~multimodal.config.StackConfig`).
For each request it decodes the inputs (validated, de-identified), asks the
encoders' own heads what they see (Whisper transcript, ImageNet labels, DICOM
metadata) when tools are on, splices projected media tokens when a trained
projector is installed for that modality, and streams the LLM's reply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch

from .config import StackConfig
from .errors import ModelLoadError
from .io.image import is_grayscale
from .io.types import AudioClip, MedicalImage
from .model import MedAnyModel
from .prompt import (NO_DESCRIPTION, SYSTEM_PROMPT, chat_messages, classifier_summary, dicom_summary, media_line,
                     transcript_summary)
from .template import PLACEHOLDERS, encode_conversation

__all__ = ["Assistant", "Request", "SYSTEM_PROMPT", "Timings"]



@dataclass
class Timings:
    """Per-request timings in seconds (for benchmarks and ``--verbose``)."""

    inputs_s: float = 0.0
    tools_s: float = 0.0
    first_token_s: float = 0.0
    total_s: float = 0.0
    new_tokens: int = 0
    prompt_tokens: int = 0

    @property
    def tokens_per_s(self) -> float:
        gen = self.total_s - self.first_token_s
        return (self.new_tokens - 1) / gen if self.new_tokens > 1 and gen > 0 else 0.0


@dataclass
class Request:
    """What one turn carries: the question and the decoded media."""

    question: str
    images: list[MedicalImage] = field(default_factory=list)
    audios: list[AudioClip] = field(default_factory=list)


class Assistant:
    """A loaded MedAny stack. Build with :meth:`load`; call :meth:`stream` or :meth:`answer`."""

    def __init__(self, model: MedAnyModel, config: StackConfig, vision=None, speech=None, info: dict | None = None):
        self.model = model
        self.config = config
        self.vision = vision
        self.speech = speech
        self.info = info or {}
        self.last_timings = Timings()

    @classmethod
    def load(cls, config: StackConfig | None = None) -> "Assistant":
        """Load every model named in ``config`` (default: the embedded offline stack)."""
        from encoders import create_encoder
        from projectors import load_projector, resolve_projector

        from .backbone import load_llm

        config = config or StackConfig()
        dtype = getattr(torch, config.dtype)
        info: dict = {}
        llm, tok, llm_info = load_llm(config.llm, dtype=dtype)
        info["llm"] = llm_info
        encoders, projectors = {}, {}
        for kind, enc_name, proj_spec in (
            ("image", config.vision, config.image_projector),
            ("audio", config.speech, config.audio_projector),
        ):
            if not enc_name:
                continue
            t0 = time.perf_counter()
            enc = create_encoder(enc_name).eval()
            info[kind] = {"name": enc_name, "load_s": time.perf_counter() - t0, "out_dim": enc.out_dim,
                          "params": sum(p.numel() for p in enc.parameters())}
            encoders[kind] = enc
            proj_dir = resolve_projector(proj_spec, encoder=enc_name, llm=config.llm)
            if proj_dir:
                proj, proj_cfg = load_projector(proj_dir)
                hidden = llm.get_input_embeddings().embedding_dim
                if (proj.in_dim, proj.out_dim) != (enc.out_dim, hidden):
                    raise ModelLoadError(
                        f"The {kind} projector in '{proj_dir.name}' maps {proj.in_dim} -> {proj.out_dim} features "
                        f"(trained for {proj_cfg.get('encoder')} + {proj_cfg.get('llm')}), but this stack needs "
                        f"{enc.out_dim} ({enc_name}) -> {hidden} ({config.llm}).")
                projectors[kind] = proj
                info[kind]["projector"] = proj_cfg
        model = MedAnyModel(llm, tok, encoders, projectors).to(config.device).eval()
        return cls(model, config, vision=encoders.get("image"), speech=encoders.get("audio"), info=info)

    # -- request handling -------------------------------------------------

    def build_messages(self, request: Request) -> tuple[list[dict], dict, dict]:
        """Messages with tool context and placeholders, plus the media tensors and token counts."""
        lines: list[str] = []
        media_inputs: dict = {}
        media_tokens: dict = {}
        use_proj = {kind: kind in self.model.projectors for kind in PLACEHOLDERS}
        spliced = [im for im in request.images if use_proj["image"] and self.projects_image(im)]
        for i, image in enumerate(request.images, 1):
            lines.append(media_line("image", i, self.describe_image(image)))
            if any(im is image for im in spliced):
                lines.append(PLACEHOLDERS["image"])
        for i, clip in enumerate(request.audios, 1):
            lines.append(media_line("audio", i, self.describe_audio(clip)))
            if use_proj["audio"]:
                lines.append(PLACEHOLDERS["audio"])
        if spliced:
            x = torch.stack([self.vision.preprocess(im.pixels) for im in spliced])  # [n, 3, S, S]
            n = self.vision.num_tokens() or self.model.encoders["image"](x[:1]).shape[1]
            media_inputs["image"] = (x, None)
            media_tokens["image"] = self.model.token_counts("image", [n] * len(spliced))
        if use_proj["audio"] and request.audios:
            x = torch.stack([self.speech.preprocess(c) for c in request.audios])  # [n, mels, frames]
            valid = [self.speech.valid_frames(c) for c in request.audios]
            media_inputs["audio"] = (x, valid)
            media_tokens["audio"] = self.model.token_counts("audio", valid)
        return chat_messages(lines, request.question), media_inputs, media_tokens

    def projects_image(self, image: MedicalImage) -> bool:
        """Whether the image projector takes ``image``.

        A projector whose config says ``"applies_to": "scans"`` (the shipped
        one: trained on DICOM scans only) takes DICOMs and grayscale pictures;
        a colour photo such as a meal would be out of its domain and is
        described by the classifier line alone.
        """
        cfg = self.info.get("image", {}).get("projector") or {}
        return cfg.get("applies_to", "any") != "scans" or image.kind == "dicom" or is_grayscale(image.pixels)

    def describe_image(self, image: MedicalImage) -> str:
        """The text line the LLM reads about ``image``: DICOM header fields, classifier labels, or neither."""
        if image.kind == "dicom":
            return dicom_summary(image.meta or {})
        if self.config.use_tools and self.vision is not None and hasattr(self.vision, "describe"):
            said = self.vision.describe(image)
            if said:
                return classifier_summary(said)
        return NO_DESCRIPTION

    def describe_audio(self, clip: AudioClip) -> str:
        """The text line the LLM reads about ``clip``: duration and Whisper's transcript (or silence)."""
        from .io.audio import is_audible

        head = f"recording ({clip.duration_s:.1f} s)"
        if not is_audible(clip.samples):
            return f"{head}, silent: no speech was heard"  # Whisper invents words on silence
        if self.config.use_tools and self.speech is not None and hasattr(self.speech, "describe"):
            return transcript_summary(head, self.speech.describe(clip).strip())
        return head

    def stream(self, question: str, images: Sequence = (), audios: Sequence = (), **generate) -> Iterator[str]:
        """Yield the answer to ``question`` about the given files/media as it is generated.

        ``generate`` overrides this call's generation settings (see :meth:`generation_kwargs`):
        ``max_new_tokens``, ``temperature`` or any keyword of HF ``generate`` such as
        ``stopping_criteria``; the stack's config is left unchanged.
        """
        from .io import load_audio, load_image

        t0 = time.perf_counter()
        timings = self.last_timings = Timings()
        request = Request(
            question,
            [im if isinstance(im, MedicalImage) else load_image(im) for im in images],
            [a if isinstance(a, AudioClip) else load_audio(a) for a in audios],
        )
        timings.inputs_s = time.perf_counter() - t0
        with torch.inference_mode():
            messages, media_inputs, media_tokens = self.build_messages(request)
        timings.tools_s = time.perf_counter() - t0 - timings.inputs_s
        enc = encode_conversation(self.model.tokenizer, messages, media_tokens)
        ids = enc.input_ids[None].to(self.model.device)  # [1, L]
        timings.prompt_tokens = int(ids.shape[1])
        stats: dict = {}
        yield from self.model.stream(ids, media_inputs=media_inputs, stats=stats, **self.generation_kwargs(**generate))
        timings.total_s = time.perf_counter() - t0
        timings.new_tokens = stats["tokens"]
        if stats["first_token_at"] is not None:
            timings.first_token_s = stats["first_token_at"] - t0

    def answer(self, question: str, images: Sequence = (), audios: Sequence = ()) -> str:
        """The whole answer as one string."""
        return "".join(self.stream(question, images, audios)).strip()

    def generation_kwargs(self, max_new_tokens: int | None = None, temperature: float | None = None,
                          **extra) -> dict:
        """Keyword arguments for HF ``generate``: the config's, with this call's overrides."""
        cfg = self.config
        temperature = cfg.temperature if temperature is None else temperature
        kwargs = {"max_new_tokens": max_new_tokens or cfg.max_new_tokens, "repetition_penalty": cfg.repetition_penalty}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return {**kwargs, **extra}
