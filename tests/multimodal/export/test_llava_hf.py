"""llava-hf export: transformers loads the checkpoint and reproduces our logits; unmappable stacks are refused.

The tiny tower is ``tiny_open_clip``'s config with ``final_ln_after_pool=True``: open_clip's
default applies ``ln_post`` to the patch tokens, which HF LLaVA's ``vision_feature_layer=-1``
(the last block's hidden states, before ``post_layernorm``) cannot express.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from encoders import create_encoder
from encoders.open_clip_encoder import TINY_CLIP_CONFIG, add_open_clip_config
from multimodal.backbone import load_llm
from multimodal.cli import main
from multimodal.errors import ExportError
from multimodal.export import export_llava_hf
from multimodal.media import MediaBatch
from multimodal.model import MedAnyModel
from multimodal.template import MEDIA_TOKEN_IDS, encode_conversation
from projectors import create_projector, load_projector, save_projector

transformers = pytest.importorskip("transformers")

HF_TINY_CLIP = "medany-tiny-clip-hf"
MESSAGES = [{"role": "user", "content": "<image>\nWhat does this chest film show?"}]


def _hf_tiny_encoder(seed: int = 0):
    cfg = copy.deepcopy(TINY_CLIP_CONFIG)
    cfg["vision_cfg"]["final_ln_after_pool"] = True  # patch tokens without ln_post, as HF LLaVA reads them
    add_open_clip_config(HF_TINY_CLIP, cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_encoder(f"open_clip:{HF_TINY_CLIP}").eval()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    encoder = _hf_tiny_encoder()
    llm, tok, _ = load_llm("tiny-random")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        proj = create_projector("mlp2x_gelu", encoder.out_dim, llm.config.hidden_size)
    proj_dir = save_projector(proj, tmp_path_factory.mktemp("proj"), encoder=HF_TINY_CLIP, llm="tiny-random")
    projector, _ = load_projector(proj_dir)
    out = export_llava_hf(tmp_path_factory.mktemp("export") / "llava", encoder, projector.eval(), llm, tok)
    return {"encoder": encoder, "projector": projector.eval(), "llm": llm, "tok": tok, "out": out,
            "proj_dir": proj_dir}


def _image(seed: int = 0, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)


def test_export_writes_a_transformers_llava_checkpoint(stack):
    names = {p.name for p in stack["out"].iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= names
    cfg = transformers.AutoConfig.from_pretrained(stack["out"])
    assert cfg.model_type == "llava" and cfg.vision_config.model_type == "clip_vision_model"
    assert cfg.vision_feature_layer == -1 and cfg.vision_feature_select_strategy == "default"
    assert cfg.vision_config.hidden_act == "gelu" and cfg.projector_hidden_act == "gelu"


def test_exported_logits_match_medany_causal(stack):
    enc, proj, llm, tok = stack["encoder"], stack["projector"], stack["llm"], stack["tok"]
    hf = transformers.LlavaForConditionalGeneration.from_pretrained(stack["out"], dtype=torch.float32).eval()
    processor = transformers.AutoProcessor.from_pretrained(stack["out"])
    ours = MedAnyModel(llm, tok, {"image": enc}, {"image": proj}, image_attention="causal").eval()

    pixels = enc.preprocess(_image() / 255.0)[None]  # [1, 3, 64, 64]
    n = enc.num_tokens()
    prompt = encode_conversation(tok, MESSAGES, {"image": [n]})
    ids = prompt.input_ids[None]  # [1, L]
    with torch.no_grad():
        want = ours(ids, media=MediaBatch.of(image=pixels)).logits  # [1, L, V]
        hf_ids = ids.masked_fill(ids == MEDIA_TOKEN_IDS["image"], hf.config.image_token_index)
        got = hf(input_ids=hf_ids, pixel_values=pixels).logits  # [1, L, V + 1]
    assert got.shape[-1] == want.shape[-1] + 1  # the added <image> token
    torch.testing.assert_close(got[..., : want.shape[-1]], want, atol=1e-4, rtol=1e-4)

    # The exported processor turns the same chat text + image into the same ids and pixels.
    batch = processor(text=prompt.text, images=_image(), return_tensors="pt")
    assert torch.equal(batch["input_ids"], hf_ids)
    torch.testing.assert_close(batch["pixel_values"], pixels, atol=1e-5, rtol=1e-5)


def test_processor_config_matches_our_preprocessing(stack):
    processor = transformers.AutoProcessor.from_pretrained(stack["out"])
    ip, pre = processor.image_processor, stack["encoder"].preprocess
    assert ip.crop_size == {"height": pre.size, "width": pre.size} and ip.size["shortest_edge"] == pre.size
    assert ip.do_center_crop and ip.do_resize
    np.testing.assert_allclose(ip.image_mean, pre.mean)
    np.testing.assert_allclose(ip.image_std, pre.std)
    assert processor.tokenizer.convert_tokens_to_ids("<image>") == len(stack["tok"])


def test_timm_cnn_encoder_is_refused(stack):
    cnn = create_encoder("timm:resnet18", image_size=32).eval()  # like medany-lite0: a timm CNN
    proj = create_projector("mlp2x_gelu", cnn.out_dim, stack["llm"].config.hidden_size)
    with pytest.raises(ExportError, match="not an open_clip VisionTransformer"):
        export_llava_hf("unused", cnn, proj, stack["llm"], stack["tok"])


@pytest.mark.parametrize("name,kwargs,match", [
    ("resampler", {"num_queries": 4, "heads": 4}, "only 'linear' and 'mlp2x_gelu'"),
    ("mlp3x_gelu", {}, "only 'linear' and 'mlp2x_gelu'"),
])
def test_unmappable_projectors_are_refused(stack, name, kwargs, match, tmp_path):
    proj = create_projector(name, stack["encoder"].out_dim, stack["llm"].config.hidden_size, **kwargs)
    with pytest.raises(ExportError, match=match):
        export_llava_hf(tmp_path / "x", stack["encoder"], proj, stack["llm"], stack["tok"])
    assert not (tmp_path / "x").exists()  # nothing written on refusal


def test_default_open_clip_tokens_with_ln_post_are_refused(stack):
    enc = create_encoder("tiny_open_clip")  # open_clip default: ln_post on every token
    with pytest.raises(ExportError, match="ln_post"):
        export_llava_hf("unused", enc, stack["projector"], stack["llm"], stack["tok"])


def test_linear_projector_exports_exactly(stack, tmp_path):
    enc, llm, tok = stack["encoder"], stack["llm"], stack["tok"]
    proj = create_projector("linear", enc.out_dim, llm.config.hidden_size).eval()
    out = export_llava_hf(tmp_path / "lin", enc, proj, llm, tok)  # verifies tower + projector on export
    assert transformers.AutoConfig.from_pretrained(out).projector_hidden_act == "linear"


def test_cli_export_and_refusal(stack, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["export", "--format", "llava-hf", str(out), "--llm", "tiny-random",
               "--vision", f"open_clip:{HF_TINY_CLIP}", "--image-projector", str(stack["proj_dir"])])
    assert rc == 0 and (out / "model.safetensors").is_file()
    rc = main(["export", str(tmp_path / "no"), "--llm", "tiny-random", "--vision", "timm:resnet18",
               "--image-projector", str(stack["proj_dir"])])
    assert rc == 1 and "not an open_clip VisionTransformer" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_quick_gelu_tower_exports_with_quick_gelu(stack, tmp_path):
    cfg = copy.deepcopy(TINY_CLIP_CONFIG)
    cfg["vision_cfg"]["final_ln_after_pool"] = True
    cfg["quick_gelu"] = True  # OpenAI CLIP's activation
    add_open_clip_config(HF_TINY_CLIP + "-quickgelu", cfg)
    enc = create_encoder(f"open_clip:{HF_TINY_CLIP}-quickgelu").eval()
    out = export_llava_hf(tmp_path / "qg", enc, stack["projector"], stack["llm"], stack["tok"])  # verified on export
    assert transformers.AutoConfig.from_pretrained(out).vision_config.hidden_act == "quick_gelu"


def test_a_wrong_mapping_is_caught_before_writing(stack, tmp_path, monkeypatch):
    import multimodal.export.clip_vision as clip_vision

    monkeypatch.setattr(clip_vision, "_activation", lambda module: "quick_gelu")  # ours is exact GELU
    with pytest.raises(ExportError, match="disagree"):
        export_llava_hf(tmp_path / "bad", stack["encoder"], stack["projector"], stack["llm"], stack["tok"])
    assert not (tmp_path / "bad").exists()
