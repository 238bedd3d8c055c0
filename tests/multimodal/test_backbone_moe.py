"""Mixture-of-experts causal LMs as the backbone: tiny random OLMoE and Mixtral saved as local folders
(config + safetensors + tokenizer), loaded by name through :func:`multimodal.backbone.load_llm`, then trained
(a projector, two steps) and asked to generate through the same stack as every other backbone."""

from __future__ import annotations

import pytest
import torch

from multimodal.backbone import load_llm, tiny_tokenizer
from multimodal.stack import MediaSpec, StackSpec, build_stack
from multimodal.train import train
from multimodal.train_config import TrainConfig
from tests.multimodal.train_helpers import make_image_set, read_metrics, write_config


def _config(kind: str, tok, router_logits: bool):
    import transformers

    common = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=32, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  num_experts_per_tok=2, output_router_logits=router_logits, bos_token_id=tok.bos_token_id,
                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    if kind == "olmoe":
        return transformers.OlmoeConfig(num_experts=4, **common)
    return transformers.MixtralConfig(num_local_experts=4, **common)


def _save_moe_llm(root, kind: str, router_logits: bool = False):
    """A random ``kind`` MoE causal LM with the tests' byte-level tokenizer, written as a local model folder."""
    import transformers

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(_config(kind, tok, router_logits))
    folder = root / kind
    model.save_pretrained(folder)  # safetensors
    tok.save_pretrained(folder)
    assert (folder / "model.safetensors").is_file()
    return folder, model


@pytest.mark.parametrize("kind", ["olmoe", "mixtral"])
def test_moe_causal_lm_loads_from_a_local_folder_and_generates_with_a_projector(tmp_path, kind):
    folder, reference = _save_moe_llm(tmp_path, kind)
    llm, tok, info = load_llm(str(folder))
    assert info.source == "local directory" and type(llm).__name__ == type(reference).__name__
    ids = tok("hello", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(llm(ids).logits, reference.eval()(ids).logits)

    stack = build_stack(StackSpec(llm=str(folder), backend="transformers",
                                  media={"image": MediaSpec("tiny_vit", fresh="moe_mlp2x1")}))
    model = stack.model
    assert model.projectors["image"].out_dim == 64
    from multimodal.media import MediaBatch, MediaInputs
    from multimodal.template import encode_conversation

    n = model.token_counts("image", [model.encoders["image"](torch.zeros(1, 3, 32, 32)).shape[1]])
    enc = encode_conversation(tok, [{"role": "user", "content": "<image>\nWhat colour?"}], {"image": n},
                              add_generation_prompt=True)
    media = MediaBatch({"image": MediaInputs(torch.zeros(1, 3, 32, 32), None)})
    out = model.generate(enc.input_ids[None], media=media, max_new_tokens=4, do_sample=False)
    assert out.shape == (1, 4)


@pytest.mark.parametrize("kind", ["olmoe", "mixtral"])
def test_projector_trains_against_a_frozen_moe_backbone_that_returns_router_logits(tmp_path, kind):
    """``output_router_logits`` in the backbone's config must not break the loss (the LLM's own router loss
    is not ours to add: it stays frozen) nor evaluation's generation."""
    folder, _ = _save_moe_llm(tmp_path, kind, router_logits=True)
    make_image_set(tmp_path)
    cfg = TrainConfig.from_file(write_config(tmp_path, llm=str(folder), image_projector="moe_mlp2x1",
                                             max_steps=2, eval_data="train.jsonl", eval_max_new_tokens=3))
    metrics = train(cfg)
    assert metrics["steps"] == 2 and torch.isfinite(torch.tensor(metrics["final_loss"]))
    assert metrics["eval"]["n"] == 4 and all(r["expert_load"] for r in read_metrics(tmp_path / "run"))
