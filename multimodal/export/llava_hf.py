"""Write the image path of a MedAny stack as a transformers ``LlavaForConditionalGeneration``.

Letters: B batch, N patch tokens, D_enc vision width, D LLM width, V vocabulary.

What maps (see ``docs/export.md``):

* vision encoder: an open_clip ViT accepted by :func:`~multimodal.export.clip_vision.check_open_clip_vit`
  -> ``CLIPVisionModel`` with ``vision_feature_layer=-1``, ``vision_feature_select_strategy="default"``;
* projector: ``mlp2x_gelu`` -> ``LlavaMultiModalProjector`` (linear_1, GELU, linear_2) and ``linear``
  -> linear_1 with an identity activation and an identity linear_2 (exact in float32);
* LLM: any transformers causal LM whose ``base_model`` / ``lm_head`` LLaVA can wrap; the vocabulary
  grows by one ``<image>`` token (zero embedding, suppressed in ``generation_config.json``).

The checkpoint reproduces :class:`~multimodal.model.MedAnyModel` with
``image_attention="causal"``: HF LLaVA attends causally over image tokens, so a
projector trained with our default bidirectional image attention exports
without error but its logits differ from ours (the docs say so).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn

from multimodal.errors import ExportError, require

from .clip_vision import check_open_clip_vit, clip_vision_config, clip_vision_state_dict

IMAGE_TOKEN = "<image>"
FORMAT = "llava-hf"


def check_projector(projector: nn.Module) -> str:
    """LLaVA ``projector_hidden_act`` for ``projector``, or :class:`ExportError` when it cannot map."""
    from projectors.linear import MLPProjector

    name = projector.registry_name
    if not isinstance(projector, MLPProjector) or projector.depth not in (1, 2):
        raise ExportError(
            f"Projector {name!r} cannot be written as LlavaMultiModalProjector (linear -> activation -> linear): "
            "only 'linear' and 'mlp2x_gelu' map; resamplers change the token count and deeper MLPs have no slot."
        )
    if projector.depth == 2 and not (type(projector.net[1]) is nn.GELU and projector.net[1].approximate == "none"):
        raise ExportError(f"Projector {name!r} uses an activation other than exact GELU.")
    return "gelu" if projector.depth == 2 else "linear"


def projector_state_dict(projector: nn.Module) -> dict[str, torch.Tensor]:
    """Our MLP projector's weights under ``LlavaMultiModalProjector``'s names."""
    net = projector.net
    first = net[0]
    if projector.depth == 2:
        second_w, second_b = net[2].weight.detach(), net[2].bias.detach()
    else:  # identity second layer: x @ I + 0 is exact in float
        second_w = torch.eye(projector.out_dim, dtype=first.weight.dtype)
        second_b = torch.zeros(projector.out_dim, dtype=first.weight.dtype)
    return {"linear_1.weight": first.weight.detach(), "linear_1.bias": first.bias.detach(),
            "linear_2.weight": second_w, "linear_2.bias": second_b}


def check_exportable(encoder, projector) -> None:
    """Raise :class:`ExportError` naming why ``encoder`` + ``projector`` cannot become a llava-hf checkpoint."""
    if projector is None:
        raise ExportError("llava-hf export needs a trained image projector (--image-projector DIR).")
    if encoder.modality != "image":
        raise ExportError(f"Encoder {encoder.name!r} is not an image encoder; "
                          "LLaVA exports images only.")
    check_open_clip_vit(encoder)
    check_projector(projector)
    if projector.in_dim != encoder.out_dim:
        raise ExportError(f"The projector expects {projector.in_dim}-d tokens but the encoder gives {encoder.out_dim}.")


def _tokenizer_with_image_token(tokenizer):
    tok = copy.deepcopy(tokenizer)
    if IMAGE_TOKEN in tok.get_vocab():
        raise ExportError(f"The LLM's tokenizer already has a {IMAGE_TOKEN!r} token; refusing to reuse it.")
    tok.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    return tok, tok.convert_tokens_to_ids(IMAGE_TOKEN)


def _image_processor(encoder):
    """``CLIPImageProcessor`` doing what :func:`encoders.base.image_to_tensor` does."""
    transformers = require("transformers")
    pre = encoder.preprocess
    return transformers.CLIPImageProcessor(
        do_resize=True, size={"shortest_edge": pre.size}, resample=3,  # PIL BICUBIC; ours is antialiased bicubic
        do_center_crop=True, crop_size={"height": pre.size, "width": pre.size},
        do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=list(pre.mean), image_std=list(pre.std), do_convert_rgb=True,
    )


def build_llava(encoder, projector, llm, tokenizer):
    """``(LlavaForConditionalGeneration, LlavaProcessor)`` holding our weights (float32, eval)."""
    transformers = require("transformers")
    check_exportable(encoder, projector)
    act = check_projector(projector)
    tok, image_token_id = _tokenizer_with_image_token(tokenizer)
    vision_cfg = clip_vision_config(encoder)
    text_cfg = copy.deepcopy(llm.config)
    text_cfg.vocab_size = len(tok)
    n_tokens = (vision_cfg.image_size // vision_cfg.patch_size) ** 2
    config = transformers.LlavaConfig(
        vision_config=vision_cfg.to_dict(), text_config=text_cfg.to_dict(), image_token_index=image_token_id,
        image_seq_length=n_tokens, projector_hidden_act=act, vision_feature_select_strategy="default",
        vision_feature_layer=-1, multimodal_projector_bias=True,
        tie_word_embeddings=bool(getattr(llm.config, "tie_word_embeddings", False)),
    )
    with torch.random.fork_rng(devices=[]):
        llava = transformers.LlavaForConditionalGeneration(config).eval()

    inner = llava.model
    vision_sd = clip_vision_state_dict(encoder)
    missing, unexpected = inner.vision_tower.load_state_dict(vision_sd, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ExportError(f"Vision weights did not map onto CLIPVisionModel (missing {missing[:3]}, "
                          f"extra {unexpected[:3]}).")
    inner.multi_modal_projector.load_state_dict(projector_state_dict(projector), strict=True)

    lm_sd = {k: t.detach() for k, t in llm.base_model.state_dict().items()}  # load_state_dict copies
    emb_key = next(k for k in lm_sd if k.endswith("embed_tokens.weight"))
    grow = len(tok) - lm_sd[emb_key].shape[0]
    lm_sd[emb_key] = torch.cat([lm_sd[emb_key], lm_sd[emb_key].new_zeros(grow, lm_sd[emb_key].shape[1])])  # [V + 1, D]
    inner.language_model.load_state_dict(lm_sd, strict=True)
    head = llm.get_output_embeddings().weight.detach()
    if config.tie_word_embeddings:
        llava.tie_weights()
    else:
        llava.lm_head.weight.data.copy_(torch.cat([head, head.new_zeros(grow, head.shape[1])]))
    llava.generation_config.suppress_tokens = [image_token_id]
    _verify_image_path(encoder, projector, llava)

    processor = transformers.LlavaProcessor(
        image_processor=_image_processor(encoder), tokenizer=tok, patch_size=vision_cfg.patch_size,
        vision_feature_select_strategy="default", image_token=IMAGE_TOKEN, num_additional_image_tokens=1,
        chat_template=getattr(tokenizer, "chat_template", None),
    )
    return llava, processor


@torch.no_grad()
def _verify_image_path(encoder, projector, llava, atol: float = 1e-4) -> None:
    """Compare encoder+projector with the converted tower+projector on one random image."""
    size = llava.config.vision_config.image_size
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        x = torch.randn(1, 3, size, size)  # [1, 3, S, S]
    ours = projector(encoder(x))  # [1, N, D]
    theirs = llava.model.get_image_features(
        pixel_values=x, vision_feature_layer=-1, vision_feature_select_strategy="default").pooler_output
    theirs = torch.stack(list(theirs)) if isinstance(theirs, (list, tuple)) else theirs
    if ours.shape != theirs.shape or not torch.allclose(ours, theirs, atol=atol, rtol=1e-4):
        diff = (ours - theirs).abs().max().item() if ours.shape == theirs.shape else float("nan")
        raise ExportError(f"The converted vision tower + projector disagree with ours (max |diff| {diff:.2e}).")


def export_llava_hf(out_dir: str | Path, encoder, projector, llm, tokenizer, *, meta: dict | None = None) -> Path:
    """Write a ``LlavaForConditionalGeneration`` checkpoint + processor into ``out_dir``; returns it.

    Raises :class:`ExportError` before writing anything when the combination does not map.
    """
    out = Path(out_dir)
    llava, processor = build_llava(encoder, projector, llm, tokenizer)
    out.mkdir(parents=True, exist_ok=True)
    llava.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    info = {"format": FORMAT, "image_token": IMAGE_TOKEN, "image_token_id": llava.config.image_token_index,
            "image_attention": "causal", "encoder": encoder.name,
            "projector": projector.registry_name, **(meta or {})}
    (out / "medany_export.json").write_text(json.dumps(info, indent=2, sort_keys=True))
    return out
