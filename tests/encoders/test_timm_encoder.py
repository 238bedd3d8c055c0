import numpy as np
import pytest
import torch

pytest.importorskip("timm")

from encoders.timm_encoder import TimmEncoder, build_timm_encoder, features_to_tokens  # noqa: E402
from multimodal.errors import ModelLoadError  # noqa: E402
from multimodal.io.types import MedicalImage  # noqa: E402


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return build_timm_encoder("resnet18", pretrained=False, image_size=64)


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return build_timm_encoder("vit_tiny_patch16_224", pretrained=False, image_size=64)


def test_features_to_tokens_layouts():
    nchw = torch.arange(2 * 5 * 3 * 4, dtype=torch.float32).view(2, 5, 3, 4)  # [B, C, h, w]
    tokens = features_to_tokens(nchw)
    assert tokens.shape == (2, 12, 5)
    assert torch.equal(tokens[1, 7], nchw[1, :, 1, 3])  # token 7 = row 1, column 3
    nhwc = nchw.permute(0, 2, 3, 1)
    assert torch.equal(features_to_tokens(nhwc, nhwc=True), tokens)
    seq = torch.randn(2, 1 + 4 + 9, 8)  # class + 4 registers + 9 patches
    assert torch.equal(features_to_tokens(seq, num_prefix_tokens=5), seq[:, 5:])
    with pytest.raises(ValueError):
        features_to_tokens(torch.randn(2, 8))


def test_cnn_tokens_are_the_flattened_feature_map(resnet):
    x = torch.randn(2, 3, 64, 64)
    y = resnet(x)
    assert y.shape == (2, 4, 512) and resnet.out_dim == 512 and resnet.num_tokens() == 4
    fmap = resnet.model.forward_features(x)  # [B, C, 2, 2]
    assert torch.equal(y, fmap.flatten(2).transpose(1, 2))
    assert resnet.preprocess.size == 64
    assert resnet.preprocess.mean == pytest.approx((0.485, 0.456, 0.406), abs=1e-3)  # from timm's data config


def test_vit_tokens_drop_the_class_token(vit):
    x = torch.randn(2, 3, 64, 64)
    y = vit(x)
    assert y.shape == (2, 16, 192) and vit.num_tokens() == 16 and vit.out_dim == 192
    full = vit.model.forward_features(x)  # [B, 1 + 16, D]
    assert full.shape[1] == 17 and torch.equal(y, full[:, 1:])


@pytest.mark.parametrize("which", ["resnet", "vit"])
def test_gradients_flow_to_the_input_and_trunk(which, request):
    enc = request.getfixturevalue(which)
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    enc.zero_grad()
    enc(x).mean().backward()
    assert x.grad.abs().sum() > 0
    stem = next(p for n, p in enc.named_parameters() if "conv1" in n or "patch_embed" in n)
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    enc.zero_grad()


def test_classify_uses_imagenet_names_and_random_heads_say_nothing(resnet):
    img = MedicalImage(np.random.default_rng(0).random((80, 90, 3), dtype=np.float32))
    top = resnet.classify(img, top_k=5)
    assert len(top) == 5 and all(isinstance(label, str) and label for label, _ in top)
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert resnet.label(954) == "banana" and resnet.label(0) == "tench"
    assert resnet.describe(img) is None  # untrained head: no made-up labels in prompts
    assert resnet.foods(img) == []


def test_classify_keeps_batchnorm_statistics_and_training_mode(resnet):
    resnet.train()
    before = {k: v.clone() for k, v in resnet.state_dict().items() if "running" in k}
    resnet.class_probs(np.full((64, 64, 3), 0.3, np.float32))
    assert resnet.training
    assert all(torch.equal(v, resnet.state_dict()[k]) for k, v in before.items())
    resnet.eval()


def test_weights_from_a_local_file(tmp_path, resnet):
    from safetensors.torch import save_file

    path = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in resnet.model.state_dict().items()}, str(path))
    other = build_timm_encoder("resnet18", pretrained=str(path), image_size=64)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(other(x), resnet(x))
    assert other.trained_head and "r18.safetensors" in other.source
    with pytest.raises(ModelLoadError):
        build_timm_encoder("resnet18", pretrained=str(tmp_path / "missing.pth"))


def test_unknown_models_and_missing_embedded_weights_raise_clear_errors():
    with pytest.raises(ModelLoadError, match="no model named"):
        build_timm_encoder("definitely_not_a_timm_model")
    with pytest.raises(ModelLoadError, match="No embedded weights"):
        build_timm_encoder("resnet18", pretrained="embedded")


def test_describe_formats_the_top_three(monkeypatch, resnet):
    probs = torch.zeros(1000)
    probs[[954, 950, 0]] = torch.tensor([0.7, 0.2, 0.05])
    monkeypatch.setattr(TimmEncoder, "class_probs", lambda self, image: probs)
    monkeypatch.setattr(resnet, "trained_head", True)
    assert resnet.describe(np.zeros((8, 8, 3), np.float32)) == "banana 70%, orange 20%, tench 5%"
    assert resnet.foods(None) == [("banana", pytest.approx(0.7)), ("orange", pytest.approx(0.2))]
