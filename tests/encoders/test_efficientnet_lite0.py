import importlib.util
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("timm")

from encoders import efficientnet_lite0 as lite0  # noqa: E402
from multimodal.errors import ModelLoadError  # noqa: E402

HAS_WEIGHTS = importlib.util.find_spec(lite0.PACKAGE) is not None
needs_weights = pytest.mark.skipif(not HAS_WEIGHTS, reason=f"{lite0.PIP_NAME} is not installed")


def _bn(prefix, n):
    return [(f"{prefix}.{k}", torch.randn(n)) for k in ("weight", "bias", "running_mean", "running_var")] + [
        (f"{prefix}.num_batches_tracked", torch.tensor(3))
    ]


def test_map_by_position_renames_in_order_and_keeps_values():
    src = OrderedDict([("_conv.weight", torch.randn(4, 3, 1, 1))] + _bn("_bn0", 4))
    dst = OrderedDict([("conv.weight", torch.zeros(4, 3, 1, 1))] + [(k.replace("_bn0", "bn1"), torch.zeros_like(v))
                                                                   for k, v in _bn("_bn0", 4)])
    out = lite0.map_by_position(src, dst)
    assert list(out) == list(dst)
    for (_, a), b in zip(src.items(), out.values()):
        assert torch.equal(a, b)


def test_map_by_position_refuses_misaligned_tensors():
    src = OrderedDict(_bn("_bn0", 4))
    swapped = OrderedDict(list(src.items())[:2] + [("bn.running_var", src["_bn0.running_mean"]),
                                                   ("bn.running_mean", src["_bn0.running_var"]),
                                                   ("bn.num_batches_tracked", src["_bn0.num_batches_tracked"])])
    with pytest.raises(ModelLoadError):  # same shapes, but a mean would land on a variance
        lite0.map_by_position(src, swapped)
    with pytest.raises(ModelLoadError):
        lite0.map_by_position(src, OrderedDict((k, torch.zeros(5)) for k in src))
    with pytest.raises(ModelLoadError):
        lite0.map_by_position(src, OrderedDict(list(src.items())[:-1]))


# --- the real packaged weights ------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("medany-cache")
    mp.setenv("MEDANY_CACHE", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def lite(cache):
    from encoders.timm_encoder import medany_lite0

    return medany_lite0()


@pytest.mark.slow
@needs_weights
def test_every_packaged_tensor_lands_unchanged(lite):
    src = lite0.load_source_state_dict()
    dst = lite.model.state_dict()
    assert len(src) == len(dst) == lite0.NUM_TENSORS
    for (src_key, a), (dst_key, b) in zip(src.items(), dst.items()):
        assert a.shape == b.shape and torch.equal(a, b), (src_key, dst_key)


@pytest.mark.slow
@needs_weights
def test_medany_lite0_contract(lite):
    assert lite.name == "medany-lite0" and lite.out_dim == 1280 and lite.num_tokens() == 49
    assert lite.preprocess.size == 224 and lite.preprocess.mean == (0.5,) * 3 and lite.preprocess.std == (0.5,) * 3
    assert lite.trained_head and lite.label_subset == "imagenet-1k" and lite0.PIP_NAME in lite.source
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        a, b = lite(x), lite(x)
    assert a.shape == (2, 49, 1280) and torch.isfinite(a).all() and torch.equal(a, b)


@pytest.mark.slow
@needs_weights
def test_cache_is_written_then_used(cache, lite, monkeypatch):
    files = list((cache / "timm").glob("tf_efficientnet_lite0-*.safetensors"))
    assert len(files) == 1
    monkeypatch.setattr(lite0, "load_source_state_dict", lambda: pytest.fail("cache was not used"))
    again = lite0.embedded_state_dict(lite.model)
    assert all(torch.equal(v, lite.model.state_dict()[k]) for k, v in again.items())


@pytest.mark.slow
@needs_weights
def test_damaged_cache_is_rebuilt(cache, lite):
    path = lite0.cache_path()
    path.write_bytes(b"not a safetensors file")
    state = lite0.embedded_state_dict(lite.model)
    assert torch.equal(state["classifier.bias"], lite.model.state_dict()["classifier.bias"])
    assert path.stat().st_size > 10_000_000


@pytest.mark.slow
@needs_weights
def test_blank_gray_image_is_not_confidently_classified(lite):
    probs = lite.class_probs(np.full((224, 224, 3), 0.5, np.float32))
    assert torch.isfinite(probs).all() and abs(float(probs.sum()) - 1) < 1e-4
    assert float(probs.max()) < 0.05  # unsure on an empty picture, yet not a constant output
    assert float(probs.std()) > 0


@pytest.mark.slow
@needs_weights
def test_same_logits_as_the_reference_implementation(lite):
    ref_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    ref = ref_pkg.EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(lite0.load_source_state_dict())
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ref.eval()(x)
        got = lite.model.forward_head(lite.model.forward_features(x))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def _photo(name):
    spec = importlib.util.find_spec("gradio")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "media_assets" / "images" / name
    return path if path.is_file() else None


@pytest.mark.slow
@needs_weights
@pytest.mark.parametrize("photo, label", [("cheetah.jpg", "cheetah"), ("lion.jpg", "lion")])
def test_recognises_real_photos(lite, photo, label):
    path = _photo(photo)
    if path is None:
        pytest.skip("gradio's sample photos are not installed")
    from PIL import Image

    from multimodal.io.types import MedicalImage

    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    top_label, top_prob = lite.classify(MedicalImage(pixels), top_k=1)[0]
    assert top_label == label and top_prob > 0.5
    assert lite.describe(MedicalImage(pixels)).startswith(label)
