import numpy as np
import pytest
import torch

from encoders import create_encoder, list_encoders

pytest.importorskip("timm")
pytest.importorskip("open_clip")

# (registry name, kwargs, expected tokens, expected width)
IMAGE_ENTRIES = [
    ("tiny_vit", {}, 16, 32),
    ("tiny_cnn", {}, 16, 32),
    ("tiny_open_clip", {}, 16, 64),
    ("timm:resnet18", {"image_size": 64}, 4, 512),
    ("timm:vit_tiny_patch16_224", {"image_size": 64}, 16, 192),
]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDANY_CACHE", str(tmp_path / "cache"))


def test_list_names_the_vision_entries_and_families():
    names = list_encoders()
    for name in ("tiny_vit", "tiny_cnn", "tiny_open_clip", "medany-lite0", "timm:<model>", "open_clip:<model>"):
        assert name in names


@pytest.mark.parametrize("name, kwargs, n_tokens, width", IMAGE_ENTRIES, ids=[e[0] for e in IMAGE_ENTRIES])
def test_every_image_entry_meets_the_encoder_contract(name, kwargs, n_tokens, width):
    enc = create_encoder(name, **kwargs)
    assert enc.modality == "image" and enc.out_dim == width and enc.num_tokens() == n_tokens
    pixels = np.random.default_rng(0).random((48, 40, 3), dtype=np.float32)  # a [H, W, 3] photo in [0, 1]
    x = torch.stack([enc.preprocess(pixels), enc.preprocess(pixels[::-1].copy())]).requires_grad_(True)
    assert x.shape[-2:] == (enc.preprocess.size, enc.preprocess.size)
    y = enc.train()(x)
    assert y.shape == (2, n_tokens, width) and torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    grads = [p.grad for p in enc.parameters() if p.requires_grad]
    # The stem (first parameter) learns, so the signal crosses the whole network; zero
    # grads elsewhere are allowed (timm ResNets zero-init the last BN of each block).
    assert grads[0] is not None and grads[0].abs().sum() > 0
    assert sum(g is not None for g in grads) > len(grads) // 2


def test_family_builders_receive_the_model_name():
    enc = create_encoder("timm:resnet18", image_size=32)
    assert enc.name == "timm:resnet18" and "random init" in enc.source


def test_unknown_name_lists_the_alternatives():
    with pytest.raises(KeyError, match="tiny_vit"):
        create_encoder("no-such-encoder")


def test_registering_a_name_twice_warns_and_protocols_describe_the_heads():
    from encoders.base import Classifier, FramedAudio, Transcriber
    from encoders.registry import _ALIASES, register_encoder

    saved = dict(_ALIASES)
    try:
        with pytest.warns(UserWarning, match="registered twice"):
            register_encoder("tiny_vit")(lambda **kw: None)
    finally:
        _ALIASES.clear()
        _ALIASES.update(saved)
    whisper, vit = create_encoder("tiny_whisper"), create_encoder("tiny_vit")
    assert isinstance(whisper, Transcriber) and isinstance(whisper, FramedAudio)
    assert not isinstance(vit, Classifier) and not isinstance(vit, Transcriber)
