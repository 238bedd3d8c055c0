"""Map an open_clip ViT image tower onto transformers' ``CLIPVisionModel``.

Letters: B batch, N patch tokens, D width, F MLP width, S image side, P patch side.

HF LLaVA reads ``hidden_states[vision_feature_layer]`` of its vision tower and,
with ``vision_feature_select_strategy="default"``, drops the class token. With
``vision_feature_layer=-1`` that is the output of the last transformer block
*before* ``post_layernorm`` (HF applies that norm to the pooled token only).
Our :class:`~encoders.open_clip_encoder.OpenClipEncoder` returns open_clip's
``output_tokens``, which are the last block's output *after* ``ln_post`` unless
the tower was built with ``final_ln_after_pool=True``. A per-token LayerNorm
cannot be folded into LLaVA's ``linear -> act -> linear`` projector, so towers
that normalise their tokens are refused rather than exported approximately.

Everything else is checked structurally (exactly the parameter names a plain
CLIP block has; no layer scale, qk-norm, attention pooler or custom norms) and
the converted tower is compared numerically with ours before anything is written.
"""

from __future__ import annotations

import torch
from torch import nn

from multimodal.errors import ExportError, require

# Per-block parameter names of a plain open_clip ResidualAttentionBlock.
_BLOCK_KEYS = {
    "ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
    "attn.out_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
    "mlp.c_proj.weight", "mlp.c_proj.bias",
}
_TOP_KEYS = {"class_embedding", "positional_embedding", "conv1.weight", "ln_pre.weight", "ln_pre.bias",
             "ln_post.weight", "ln_post.bias", "proj"}


def _activation(module: nn.Module) -> str:
    """HF ``hidden_act`` name for open_clip's MLP activation."""
    open_clip = require("open_clip", "all")
    if isinstance(module, open_clip.transformer.QuickGELU):
        return "quick_gelu"
    if type(module) is nn.GELU:
        return "gelu" if module.approximate == "none" else "gelu_pytorch_tanh"
    raise ExportError(f"The vision tower's MLP activation {type(module).__name__} has no transformers CLIP equivalent.")


def _eps(visual: nn.Module) -> float:
    eps = {m.eps for m in visual.modules() if isinstance(m, nn.LayerNorm)}
    if len(eps) != 1:
        raise ExportError("The vision tower mixes LayerNorm epsilons; transformers' CLIP uses one for all norms.")
    if any(type(m).__name__ not in ("LayerNorm", "LayerNormFp32") for m in visual.modules()
           if isinstance(m, nn.LayerNorm)):
        raise ExportError("The vision tower uses a custom LayerNorm transformers' CLIP cannot express.")
    return float(eps.pop())


def check_open_clip_vit(encoder) -> None:
    """Raise :class:`ExportError` unless ``encoder`` is an open_clip ViT that CLIPVisionModel reproduces."""
    open_clip = require("open_clip", "all")
    from encoders.open_clip_encoder import OpenClipEncoder

    name = encoder.name or type(encoder).__name__
    visual = encoder.visual if isinstance(encoder, OpenClipEncoder) else None
    if not isinstance(encoder, OpenClipEncoder) or encoder.kind != "vit" or \
            not isinstance(visual, open_clip.transformer.VisionTransformer):
        raise ExportError(
            f"Encoder {name!r} is not an open_clip VisionTransformer; llava-hf export needs a CLIP-style ViT "
            "(class token + learned positions + pre-norm blocks) whose weights map onto transformers' CLIPVisionModel."
        )
    if visual.attn_pool is not None:
        raise ExportError(f"Encoder {name!r} has an attentional pooler (CoCa style); CLIPVisionModel has none.")
    if not visual.final_ln_after_pool:
        raise ExportError(
            f"Encoder {name!r} applies ln_post to its patch tokens (open_clip's default). HF LLaVA feeds the "
            "projector the last block's hidden states without that LayerNorm, and a per-token norm cannot be folded "
            "into the LLaVA projector. Train the projector on a tower built with final_ln_after_pool=True."
        )
    if isinstance(visual.ln_pre, nn.Identity):
        raise ExportError(f"Encoder {name!r} has no ln_pre; CLIPVisionModel always applies pre_layrnorm.")
    if visual.conv1.bias is not None:
        raise ExportError(f"Encoder {name!r} has a patch-embedding bias; CLIPVisionModel's has none.")
    gh, gw = visual.grid_size
    if gh != gw or visual.patch_size[0] != visual.patch_size[1]:
        raise ExportError(f"Encoder {name!r} is not square; CLIPVisionModel needs square images and patches.")
    keys = set(visual.state_dict())
    blocks = len(visual.transformer.resblocks)
    expected = _TOP_KEYS | {f"transformer.resblocks.{i}.{k}" for i in range(blocks) for k in _BLOCK_KEYS}
    extra = sorted(keys - expected)
    if extra or expected - keys:
        shown = ", ".join(extra[:4]) or ", ".join(sorted(expected - keys)[:4])
        raise ExportError(
            f"Encoder {name!r} has parameters a plain CLIP block lacks or misses ones it needs ({shown}); "
            "layer scale, qk-norm and scaled attention variants cannot be expressed by CLIPVisionModel."
        )
    for block in visual.transformer.resblocks:
        if not isinstance(block.attn, nn.MultiheadAttention) or not block.attn.batch_first:
            raise ExportError(f"Encoder {name!r} uses a non-standard attention module.")
    _activation(visual.transformer.resblocks[0].mlp.gelu)
    _eps(visual)


def clip_vision_config(encoder):
    """``CLIPVisionConfig`` describing ``encoder``'s open_clip ViT (call :func:`check_open_clip_vit` first)."""
    transformers = require("transformers")
    visual = encoder.visual
    block = visual.transformer.resblocks[0]
    width = visual.transformer.width
    return transformers.CLIPVisionConfig(
        hidden_size=width,
        intermediate_size=block.mlp.c_fc.out_features,
        num_hidden_layers=len(visual.transformer.resblocks),
        num_attention_heads=block.attn.num_heads,
        num_channels=3,
        image_size=visual.image_size[0],
        patch_size=visual.patch_size[0],
        hidden_act=_activation(block.mlp.gelu),
        layer_norm_eps=_eps(visual),
        projection_dim=int(visual.proj.shape[1]) if visual.proj is not None else width,
    )


def clip_vision_state_dict(encoder) -> dict[str, torch.Tensor]:
    """open_clip ViT weights renamed to ``CLIPVisionModel``'s keys (``vision_model.`` prefix dropped)."""
    v = encoder.visual
    sd = {k: t.detach() for k, t in v.state_dict().items()}
    out = {
        "embeddings.class_embedding": sd["class_embedding"],
        "embeddings.patch_embedding.weight": sd["conv1.weight"],  # [D, 3, P, P]
        "embeddings.position_embedding.weight": sd["positional_embedding"],  # [1 + N, D]
        "pre_layrnorm.weight": sd["ln_pre.weight"],
        "pre_layrnorm.bias": sd["ln_pre.bias"],
        "post_layernorm.weight": sd["ln_post.weight"],  # used for the pooled token only, as in open_clip
        "post_layernorm.bias": sd["ln_post.bias"],
    }
    for i in range(len(v.transformer.resblocks)):
        src, dst = f"transformer.resblocks.{i}.", f"encoder.layers.{i}."
        qw = sd[src + "attn.in_proj_weight"].chunk(3, dim=0)  # 3 x [D, D]
        qb = sd[src + "attn.in_proj_bias"].chunk(3, dim=0)  # 3 x [D]
        for j, proj in enumerate(("q_proj", "k_proj", "v_proj")):
            out[f"{dst}self_attn.{proj}.weight"] = qw[j]
            out[f"{dst}self_attn.{proj}.bias"] = qb[j]
        pairs = {"attn.out_proj": "self_attn.out_proj", "ln_1": "layer_norm1", "ln_2": "layer_norm2",
                 "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
        for a, b in pairs.items():
            out[f"{dst}{b}.weight"] = sd[f"{src}{a}.weight"]
            out[f"{dst}{b}.bias"] = sd[f"{src}{a}.bias"]
    return {k: t.contiguous().clone() for k, t in out.items()}
