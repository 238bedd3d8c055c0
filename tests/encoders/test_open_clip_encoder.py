import json

import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from encoders.open_clip_encoder import (  # noqa: E402
    TINY_CLIP_CONFIG,
    add_open_clip_config,
    build_open_clip_encoder,
    tiny_open_clip,
)
from multimodal.errors import ModelLoadError  # noqa: E402

BIOMEDCLIP = "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
TEXT = {"context_length": 8, "vocab_size": 32, "width": 16, "heads": 2, "layers": 1}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDANY_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny():
    return tiny_open_clip()


def test_tiny_tokens_shape_and_preprocessing(tiny):
    y = tiny(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, 16, 64) and tiny.out_dim == 64 and tiny.num_tokens() == 16
    assert torch.isfinite(y).all()
    assert tiny.preprocess.size == 64
    assert tiny.preprocess.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))  # CLIP's, from preprocess_cfg


def test_only_the_image_tower_is_kept(tiny):
    names = [n for n, _ in tiny.named_parameters()]
    assert names and all(n.startswith("visual.") for n in names)
    assert not any("token_embedding" in n for n in names)


def test_tokens_match_open_clips_own_patch_tokens(tiny):
    x = torch.randn(2, 3, 64, 64)
    ref = tiny.visual.forward_intermediates(x, indices=1, normalize_intermediates=True, output_fmt="NLC",
                                            intermediates_only=True)["image_intermediates"][-1]  # [B, 16, 64]
    torch.testing.assert_close(tiny(x), ref)


def test_gradient_flows_and_seed_is_deterministic(tiny):
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    tiny.zero_grad()
    tiny(x).mean().backward()
    assert x.grad.abs().sum() > 0
    assert tiny.visual.conv1.weight.grad.abs().sum() > 0
    tiny.zero_grad()
    a, b, c = tiny_open_clip(seed=3), tiny_open_clip(seed=3), tiny_open_clip(seed=4)
    assert torch.equal(a.visual.conv1.weight, b.visual.conv1.weight)
    assert not torch.equal(a.visual.conv1.weight, c.visual.conv1.weight)


def test_pool_type_none_still_drops_the_class_token():
    cfg = json.loads(json.dumps(TINY_CLIP_CONFIG))
    cfg["vision_cfg"]["pool_type"] = "none"
    add_open_clip_config("medany-test-clip-nopool", cfg)
    enc = build_open_clip_encoder("medany-test-clip-nopool")
    assert enc(torch.randn(1, 3, 64, 64)).shape == (1, 16, 64)


def test_modified_resnet_tower():
    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8, "head_width": 8},
           "text_cfg": TEXT}
    add_open_clip_config("medany-test-rn", cfg)
    enc = build_open_clip_encoder("medany-test-rn")
    y = enc(torch.randn(2, 3, 64, 64))
    assert y.shape == (2, 4, 256) and enc.out_dim == 256 and enc.num_tokens() == 4  # 64/32 = 2x2 grid


def test_hf_hub_names_take_the_hub_path_with_a_timm_trunk(tmp_path, monkeypatch):
    """A BiomedCLIP-shaped repo (timm ViT trunk) served by a fake hub: config, weights, preprocessing."""
    model_cfg = {"embed_dim": 32, "text_cfg": TEXT,
                 "vision_cfg": {"timm_model_name": "vit_tiny_patch16_224", "timm_model_pretrained": False,
                                "timm_pool": "", "timm_proj": "linear", "image_size": 224}}
    repo = {"model_cfg": model_cfg, "preprocess_cfg": {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}}
    (tmp_path / "open_clip_config.json").write_text(json.dumps(repo))
    # The served weights: the same architecture built locally under another seed.
    add_open_clip_config("medany-test-hubref", model_cfg)
    torch.manual_seed(11)
    reference = open_clip.create_model("medany-test-hubref").eval()
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in reference.state_dict().items()},
              str(tmp_path / "open_clip_model.safetensors"))
    asked = []

    def fake_download(model_id, filename=None, revision=None, cache_dir=None):
        asked.append((model_id, filename))
        return str(tmp_path / (filename or "open_clip_model.safetensors"))

    monkeypatch.setattr(open_clip.factory, "download_pretrained_from_hf", fake_download)
    enc = build_open_clip_encoder(f"hf-hub:{BIOMEDCLIP}", pretrained="ignored-for-hub-names")
    assert asked[0] == (BIOMEDCLIP, "open_clip_config.json") and all(m == BIOMEDCLIP for m, _ in asked)
    assert enc.kind == "timm" and enc.out_dim == 192 and enc.num_tokens() == 196
    assert enc.preprocess.mean == pytest.approx((0.1, 0.2, 0.3))
    assert enc.preprocess.std == pytest.approx((0.4, 0.5, 0.6))
    ref_trunk = reference.visual.trunk.state_dict()
    assert all(torch.equal(v, ref_trunk[k]) for k, v in enc.visual.trunk.state_dict().items())
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        y = enc(x)
        expected = reference.visual.trunk.forward_features(x)[:, 1:]  # patch tokens, class token dropped
    assert y.shape == (1, 196, 192)
    torch.testing.assert_close(y, expected)


def test_unreachable_hub_and_unknown_names_raise_model_load_error(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(open_clip.factory, "download_pretrained_from_hf", offline)
    with pytest.raises(ModelLoadError, match="internet"):
        build_open_clip_encoder(f"hf-hub:{BIOMEDCLIP}")
    with pytest.raises(ModelLoadError):
        build_open_clip_encoder("No-Such-CLIP-Model")
