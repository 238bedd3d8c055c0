"""Why an answer: where the vision encoder looked, which image tokens and which prompt facts the answer rests on.

Three views of one finished answer (:func:`explain`):

- **Grad-CAM** (Selvaraju et al. 2017) over the vision encoder's last feature
  grid, for the classifier's own top class (the classifier line): the class
  logit's gradient, averaged over the grid, weights each feature channel.
- **Answer map**: how much each projected image token supports the answer,
  measured on the answer's summed log-probability. Where the backend has
  gradients (transformers) this is gradient x input, one backward pass; on
  llama.cpp, which has none, it is occlusion: each token (or block of tokens)
  replaced by the image's mean token, and the log-probability the answer
  loses.
- **Facts**: each prompt part (each DICOM header field, the classifier line,
  the transcript, each context or knowledge row, the question) removed in turn,
  as Captum's ``LLMAttribution`` with feature ablation does: the answer's mean
  per-token log-probability lost without it. Positive: the part supported this
  answer.

Maps explain the model, not the disease: saliency maps localise chest X-ray
findings worse than radiologists (Saporta et al., Nature Machine Intelligence
2022). :data:`CAVEAT` says so wherever a map is shown.

Letters: T image tokens, D LLM width, K answer tokens, N encoder tokens, C channels, h/w grid.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Iterator, Sequence

import numpy as np
import torch

from .errors import InputError
from .evidence import Evidence, dicom_evidence
from .prompt import DICOM_FIELDS, NO_DESCRIPTION, dicom_summary

CAVEAT = ("These maps explain the model, not the disease: they show what this model's answer rests on, not where a "
          "finding is (saliency maps localise chest X-ray findings worse than radiologists: Saporta et al., Nature "
          "Machine Intelligence 2022).")
DICOM_FIELD_NAMES = {key: f"DICOM {label}" for key, label in DICOM_FIELDS}
"""Header fields a fact attribution removes one at a time (those :func:`multimodal.prompt.dicom_summary` writes)."""
OCCLUSION_BLOCK = 3
"""Tokens per side of a block occlusion hides at once: a 7 x 7 grid takes 9 LLM passes instead of 49."""


@dataclass
class Heatmap:
    """Scores on the encoder's token grid: ``raw`` as measured, ``values`` scaled to [0, 1]."""

    raw: np.ndarray
    """``[h, w]`` float32 scores (log-probability units for the answer map)."""
    title: str
    method: str

    @property
    def values(self) -> np.ndarray:
        """``raw`` clipped at 0 (evidence against the answer is not shown as heat) and scaled to [0, 1]."""
        pos = np.clip(self.raw, 0.0, None)
        top = float(pos.max()) if pos.size else 0.0
        return (pos / top).astype(np.float32) if top > 0 else np.zeros_like(pos, dtype=np.float32)

    def as_dict(self) -> dict:
        return {"title": self.title, "method": self.method, "grid": list(self.raw.shape),
                "scores": np.round(self.raw, 5).tolist()}


@dataclass(frozen=True)
class FactWeight:
    """One prompt part and the answer's mean per-token log-probability lost when it is removed."""

    part: str
    text: str
    delta: float


@dataclass
class Explanation:
    """The three views of one answer about one image, with what each took."""

    image_index: int | None
    classifier: Heatmap | None = None
    answer_map: Heatmap | None = None
    facts: list[FactWeight] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    passes: int = 0
    """LLM passes over prompt and answer (1 per fact and per occluded block; 1 for gradient x input)."""

    def overlays(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """Each map drawn over ``pixels`` (the image as the answer saw it): ``{"grad_cam" | "answer_map":
        uint8 [H, W, 3]}``; the answer map as a grid of token cells, Grad-CAM smoothed."""
        from .overlay import heat_overlay

        out = {}
        if self.classifier is not None:
            out["grad_cam"] = heat_overlay(pixels, self.classifier.values)
        if self.answer_map is not None:
            out["answer_map"] = heat_overlay(pixels, self.answer_map.values, grid=True)
        return out

    def as_dict(self, pixels: np.ndarray | None = None) -> dict:
        """The explanation as JSON-ready data; with ``pixels``, each overlay as a base64 PNG under ``png``."""
        png = {}
        if pixels is not None:
            import base64

            from .overlay import png_bytes

            png = {name: base64.b64encode(png_bytes(rgb)).decode("ascii")
                   for name, rgb in self.overlays(pixels).items()}
        return {"image": self.image_index, "caveat": CAVEAT, "png": png,
                "classifier": self.classifier.as_dict() if self.classifier else None,
                "answer_map": self.answer_map.as_dict() if self.answer_map else None,
                "facts": [{"part": f.part, "text": f.text, "delta_logprob": round(f.delta, 5)} for f in self.facts],
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}, "llm_passes": self.passes}


# -- Grad-CAM ------------------------------------------------------------------------------------


def gradcam(encoder, image) -> Heatmap | None:
    """Grad-CAM of ``encoder``'s top class on ``image`` (a MedicalImage or pixels), or None when the encoder
    has no trained classifier head on a timm model (nothing to explain)."""
    from encoders.timm_encoder import TimmEncoder, _pixels, eval_mode, features_to_tokens

    if not isinstance(encoder, TimmEncoder) or not (encoder.trained_head and encoder.num_classes):
        return None
    p = next(encoder.parameters())
    x = encoder.preprocess(_pixels(image))[None].to(p.device, p.dtype).requires_grad_(True)  # [1, 3, S, S]
    with torch.inference_mode(False), torch.enable_grad(), eval_mode(encoder):
        feats = encoder.model.forward_features(x)
        logits = encoder.model.forward_head(feats)  # [1, K]
        k = int(logits[0].argmax())
        (grad,) = torch.autograd.grad(logits[0, k], feats)
    tokens = features_to_tokens(feats.detach(), encoder.num_prefix_tokens, encoder.nhwc)[0]  # [N, C]
    grads = features_to_tokens(grad, encoder.num_prefix_tokens, encoder.nhwc)[0]  # [N, C]
    cam = torch.relu(tokens.float() @ grads.float().mean(0))  # [N]
    prob = float(logits[0].detach().float().softmax(-1)[k])
    return Heatmap(as_grid(cam), f"Grad-CAM of the classifier: {encoder.label(k)} {prob:.0%}", "grad-cam")


def as_grid(scores: torch.Tensor | np.ndarray) -> np.ndarray:
    """``[N]`` token scores -> ``[h, w]``: a square grid when N is a square (CNN and ViT patches), else one row."""
    flat = np.asarray(torch.as_tensor(scores).detach().float().cpu(), dtype=np.float32).reshape(-1)
    side = math.isqrt(flat.size)
    return flat.reshape(side, side) if side * side == flat.size else flat.reshape(1, -1)


# -- the answer's log-probability ----------------------------------------------------------------


def answer_ids(tokenizer, text: str) -> torch.Tensor:
    """The answer's token ids ``[K]`` as the assistant turn continues the prompt."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise InputError("There is no answer to explain.", code="empty_answer")
    return torch.tensor(ids, dtype=torch.long)


def mean_logprob(backend, enc, media, target: torch.Tensor) -> float:
    """The answer ``target``'s mean per-token log-probability after the prompt ``enc`` with ``media``."""
    with torch.inference_mode():
        return float(backend.answer_logprobs(enc.input_ids, media, target).mean())


class Baseline:
    """The answer's prompt encoded once, its tokens, and (on first use) its mean log-probability: what the
    occlusion map and the fact weights both measure losses from."""

    def __init__(self, assistant, answer):
        self.backend = assistant.backend
        self.enc, self.media = assistant.encode_plan(answer.request, answer.plan)
        self.target = answer_ids(assistant.tokenizer, answer.text)

    @cached_property
    def full(self) -> float:
        return mean_logprob(self.backend, self.enc, self.media, self.target)


def image_rows(assistant, plan, image_index: int) -> slice | None:
    """Rows of the prompt's image features that belong to image ``image_index`` (None: not spliced)."""
    spliced = [item.index for item in plan.media if item.kind == "image" and item.spliced]
    if image_index not in spliced:
        return None
    per_image = assistant.model.token_counts("image", [assistant.vision.num_tokens()])[0]
    j = spliced.index(image_index)
    return slice(j * per_image, (j + 1) * per_image)


def answer_map(assistant, answer, image_index: int = 1, block: int = 1, method: str = "auto",
               base: Baseline | None = None) -> tuple[Heatmap | None, int]:
    """The answer map of image ``image_index`` and the LLM passes it took (see the module docstring).

    ``method``: ``gradient`` (gradient x input; needs the transformers backend), ``occlusion``, or ``auto``
    (gradient where the backend has gradients). ``block`` (occlusion only) hides ``block`` x ``block`` tokens
    at a time: 49 passes for a 7 x 7 grid at 1, 9 at 3.
    """
    from .backends.hf import TransformersBackend

    if method not in ("auto", "gradient", "occlusion"):
        raise InputError(f"Unknown explanation method {method!r}: use auto, gradient or occlusion.",
                         code="invalid_value")
    has_grad = isinstance(assistant.backend, TransformersBackend)
    if method == "gradient" and not has_grad:
        raise InputError(f"The {assistant.backend.name} backend has no gradients: use occlusion.",
                         code="invalid_value")
    if not isinstance(block, int) or block < 1:
        raise InputError("The occlusion block must be a whole number of tokens, at least 1.", code="invalid_value")
    rows = image_rows(assistant, answer.plan, image_index)
    if rows is None:
        return None, 0
    base = base or Baseline(assistant, answer)
    enc, media, target = base.enc, base.media, base.target
    image = media["image"]  # [T_all, D]
    if has_grad and method != "occlusion":
        with torch.inference_mode(False), torch.enable_grad():
            own = image[rows].clone().requires_grad_(True)  # [T, D]
            spliced = torch.cat([image[: rows.start].clone(), own, image[rows.stop:].clone()])
            total = assistant.backend.answer_logprobs(enc.input_ids, {**media, "image": spliced}, target).sum()
            (grad,) = torch.autograd.grad(total, own)
        scores = (grad * own.detach()).sum(-1)  # [T]
        return Heatmap(as_grid(scores), "Answer map: gradient x input on the image tokens", "gradient-x-input"), 1
    full = base.full
    grid = as_grid(np.zeros(rows.stop - rows.start))
    h, w = grid.shape
    mean = image[rows].mean(0)  # [D] the occluding token
    passes = 0
    for top in range(0, h, block):
        for left in range(0, w, block):
            hidden = image.clone()
            cells = [rows.start + r * w + c for r in range(top, min(top + block, h))
                     for c in range(left, min(left + block, w))]
            hidden[cells] = mean
            grid[top:top + block, left:left + block] = full - mean_logprob(assistant.backend, enc,
                                                                       {**media, "image": hidden}, target)
            passes += 1
    return Heatmap(grid, f"Answer map: occlusion of {block}x{block} token blocks", "occlusion"), passes


# -- facts ---------------------------------------------------------------------------------------


def prompt_parts(plan) -> list[tuple[str, str, object]]:
    """``[(part, text, ablated plan)]``: each removable part of the prompt and the plan without it."""
    parts = []
    for n, item in enumerate(plan.media):
        e = item.evidence
        if e.source == "dicom" and isinstance(item.medium.meta, dict):
            meta = item.medium.meta
            for key, name in DICOM_FIELD_NAMES.items():
                if meta.get(key):
                    rest = {k: v for k, v in meta.items() if k != key}
                    parts.append((f"{e.label} {name}", str(meta[key]),
                                  _with_item(plan, n, dicom_evidence(e.label, dicom_summary(rest), rest))))
        elif e.source != "attachment":
            parts.append((f"{e.label} ({e.source})", e.text,
                          _with_item(plan, n, Evidence("attachment", e.label, NO_DESCRIPTION))))
    for n, e in enumerate(plan.context):
        parts.append((f"{e.label} ({e.source})", e.text,
                      replace(plan, context=[c for i, c in enumerate(plan.context) if i != n])))
    parts.append(("Question", plan.question, replace(plan, question="")))
    return parts


def _with_item(plan, n: int, evidence: Evidence):
    media = list(plan.media)
    media[n] = replace(media[n], evidence=evidence)
    return replace(plan, media=media)


def fact_weights(assistant, answer, parts: Sequence[tuple[str, str, object]] | None = None,
                 base: Baseline | None = None) -> list[FactWeight]:
    """Each prompt part's weight: the answer's mean per-token log-probability lost when it is removed."""
    base = base or Baseline(assistant, answer)
    out = []
    for part, text, ablated in parts if parts is not None else prompt_parts(answer.plan):
        enc, media = assistant.encode_plan(answer.request, ablated)
        out.append(FactWeight(part, text, base.full - mean_logprob(assistant.backend, enc, media, base.target)))
    return sorted(out, key=lambda f: -f.delta)


# -- all three -----------------------------------------------------------------------------------


def explain_steps(assistant, answer=None, image_index: int = 1, *, block: int = OCCLUSION_BLOCK,
                  method: str = "auto", facts: bool = True) -> Iterator[Explanation]:
    """As :func:`explain`, yielding the same :class:`Explanation` again as each view is ready (Grad-CAM, the
    answer map, the facts): a page can show the quick views while the slow ones are computed."""
    answer = answer or assistant.last_answer
    if answer is None or not answer.text.strip():
        raise InputError("Ask a question first: there is no answer to explain.", code="empty_answer")
    images = answer.request.images
    if images and not 1 <= image_index <= len(images):
        raise InputError(f"There is no image {image_index} in this study (it has {len(images)}).",
                         code="invalid_value")
    out = Explanation(image_index if images else None)
    base = Baseline(assistant, answer)  # one encoding and one full pass for the map and the facts
    t = time.perf_counter()
    item = next((m for m in answer.plan.media if m.kind == "image" and m.index == image_index), None)
    if item is not None and item.evidence.source == "classifier" and assistant.vision is not None:
        out.classifier = gradcam(assistant.vision, item.medium)
        out.seconds["grad_cam"] = time.perf_counter() - t
        yield out
    if images:
        t = time.perf_counter()
        out.answer_map, out.passes = answer_map(assistant, answer, image_index, block, method, base)
        out.seconds["answer_map"] = time.perf_counter() - t
        yield out
    if facts:
        t = time.perf_counter()
        parts = prompt_parts(answer.plan)
        out.facts = fact_weights(assistant, answer, parts, base)
        out.passes += len(parts) + 1  # and the full prompt's pass, shared with an occlusion map
        out.seconds["facts"] = time.perf_counter() - t
    yield out


def explain(assistant, answer=None, image_index: int = 1, *, block: int = OCCLUSION_BLOCK, method: str = "auto",
            facts: bool = True) -> Explanation:
    """Explain ``answer`` (default: the assistant's last) about image ``image_index`` of its request.

    Grad-CAM is drawn when the image's evidence is the classifier line (a photo); a DICOM's evidence is its
    header, whose fields the fact attribution weighs instead.
    """
    *_, out = explain_steps(assistant, answer, image_index, block=block, method=method, facts=facts)
    return out
