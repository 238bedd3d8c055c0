"""The ``onnx:DIR`` encoder family: medany-lite0 exported to ONNX Runtime in fp32 (same features) and int8
(static QDQ, calibrated on real scans), loaded back through the registry with its classifier head."""

import json

import pytest
import torch

from encoders import create_encoder


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from multimodal.quantize import CALIBRATION, quantize

    root = tmp_path_factory.mktemp("onnx")
    for scheme in ("fp32", "int8"):
        assert quantize(str(root / scheme), scheme, encoder="medany-lite0", calibration=CALIBRATION[:3]) == 0
    return root


@pytest.fixture(scope="module")
def pixels():
    from multimodal.io import load_image

    ref = create_encoder("medany-lite0")
    images = [load_image(f"sample:{n}") for n in ("MR_small.dcm", "fruits.jpg")]
    return ref, images, torch.stack([ref.preprocess(im.pixels) for im in images])  # [2, 3, 224, 224]


def test_fp32_export_gives_the_same_features(exported, pixels):
    ref, images, x = pixels
    enc = create_encoder(f"onnx:{exported / 'fp32'}")
    with torch.no_grad():
        a, b = ref(x), enc(x)
    assert b.shape == a.shape == (2, 49, 1280)
    assert (a - b).abs().max() < 1e-3  # measured 2e-5
    (label, p), = enc.classify(images[1], 1)
    (want, q), = ref.classify(images[1], 1)
    assert label == want and abs(p - q) < 1e-4
    assert enc.num_tokens() == 49 and enc.out_dim == 1280


def test_int8_export_is_smaller_and_close(exported, pixels):
    from multimodal.quantize import base_name

    ref, images, x = pixels
    manifest = json.loads((exported / "int8" / "medany_quantized.json").read_text())
    assert manifest["base"] == "medany-lite0" and manifest["calibration_images"] == 3
    assert sorted(p.name for p in (exported / "int8").iterdir()) == ["encoder.onnx", "head.safetensors",
                                                                    "medany_quantized.json"]  # no scratch left
    assert manifest["files"]["encoder.onnx"] < 0.35 * json.loads(
        (exported / "fp32" / "medany_quantized.json").read_text())["files"]["encoder.onnx"]
    enc = create_encoder(f"onnx:{exported / 'int8'}")
    with torch.no_grad():
        a, b = ref(x), enc(x)
    cos = torch.nn.functional.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)
    assert (cos > 0.7).all()  # measured 0.86-0.93 on real scans: int8 activations cost this network accuracy
    assert enc.describe(images[1])  # the head still names classes
    assert base_name(f"onnx:{exported / 'int8'}") == "medany-lite0"


def test_a_folder_without_a_manifest_is_refused(tmp_path):
    from multimodal.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="medany quantize"):
        create_encoder(f"onnx:{tmp_path}")
