import numpy as np
import pytest
import torch

from encoders.tiny import TinyAttention, tiny_cnn, tiny_vit

BUILDERS = {"tiny_vit": tiny_vit, "tiny_cnn": tiny_cnn}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_shapes_and_token_count(name):
    enc = BUILDERS[name]()
    y = enc(torch.randn(3, 3, 32, 32))
    assert y.shape == (3, 16, 32)
    assert enc.num_tokens() == 16 and enc.out_dim == 32 and enc.name == name
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_gradient_reaches_every_parameter(name):
    enc = BUILDERS[name]()
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    enc(x).square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_seed_fixes_weights_without_touching_global_rng(name):
    build = BUILDERS[name]
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = build(seed=7)
    assert torch.equal(torch.rand(1), expected_next)  # building consumed no global randomness
    b, c = build(seed=7), build(seed=8)
    for (k, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), k
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_items_are_encoded_independently(name):
    enc = BUILDERS[name]().eval()
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(enc(x)[1:2], enc(x[1:2]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_preprocess_turns_any_photo_into_the_input_size(name):
    enc = BUILDERS[name]()
    pixels = np.random.default_rng(0).random((50, 70, 3), dtype=np.float32)
    x = enc.preprocess(pixels)
    assert x.shape == (3, 32, 32)
    assert -1.0 - 1e-6 <= float(x.min()) and float(x.max()) <= 1.0 + 1e-6  # mean/std 0.5
    assert enc(x[None]).shape == (1, 16, 32)


def test_attention_is_isolated_in_one_method(monkeypatch):
    enc = tiny_vit()
    x = torch.randn(2, 3, 32, 32)
    expected = enc(x)
    calls = []

    def reference(self, q, k, v):  # [B, Hd, N, Dh]
        calls.append(q.shape)
        scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
        return scores.softmax(-1) @ v

    monkeypatch.setattr(TinyAttention, "attend", reference)
    torch.testing.assert_close(enc(x), expected, rtol=1e-5, atol=1e-5)
    assert calls == [torch.Size([2, 4, 16, 8])] * 2  # 2 layers, 4 heads, 16 tokens, 8 wide


def test_bad_geometry_is_refused():
    with pytest.raises(ValueError):
        tiny_vit(image_size=30)
    with pytest.raises(ValueError):
        tiny_cnn(image_size=36)
