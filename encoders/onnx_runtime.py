"""timm image encoders run by ONNX Runtime, in fp32 or int8: the ``onnx:DIR`` encoder family.

Letters: B batch, C channels (= D), h/w feature grid, K classes, S image side.

:func:`export_encoder` writes a folder that ``onnx:DIR`` loads back:

- ``encoder.onnx``: the timm model's ``forward_features``, ``[1, 3, S, S] -> [1, C, h, w]``, exported
  for one image (the TF-style "same" padding of EfficientNet-Lite becomes static pads only when the
  input shape is fixed; a dynamic batch left shape arithmetic in the graph that ONNX Runtime's
  quantizer then broke). ``int8``: ONNX Runtime's static quantization in QDQ form (int8 weights per
  output channel, uint8 activations whose ranges are calibrated on a few real images), run by its
  int8 kernels (VNNI where the CPU has it);
- ``head.safetensors``: the classifier head (global pool + linear, 1.3 M parameters) in fp32, run by
  torch, so the ImageNet labels the pipeline shows still come from the same encoder;
- ``medany_quantized.json``: the base encoder name (``medany-lite0``: which projectors fit), the
  scheme, the calibration inputs' count and the files' sizes.

The loaded encoder is the base :class:`~encoders.timm_encoder.TimmEncoder` (its preprocessing, token
layout and label table) with its timm model swapped for :class:`OnnxFeatures`; the fp32 convolution
weights are dropped. Loading reads no pickle: ONNX protobuf and safetensors only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from multimodal.errors import ModelLoadError, require

from .registry import create_encoder, register_family

MODEL_FILE = "encoder.onnx"
HEAD_FILE = "head.safetensors"
MANIFEST = "medany_quantized.json"
SCHEMES = ("fp32", "int8")


class OnnxFeatures(nn.Module):
    """Stands in for a timm model inside a TimmEncoder: ``forward_features`` by ONNX Runtime, ``forward_head``
    by the kept fp32 head. One session per torch thread count, so ``torch.set_num_threads`` governs both."""

    def __init__(self, path: Path, global_pool: nn.Module, classifier: nn.Module, num_features: int,
                 num_classes: int):
        super().__init__()
        self.path = Path(path)
        self.global_pool, self.classifier = global_pool, classifier
        self.num_features, self.num_classes = num_features, num_classes
        self._sessions: dict[int, object] = {}

    def session(self, threads: int | None = None):
        ort = require("onnxruntime", "all")
        threads = threads or torch.get_num_threads()
        if threads not in self._sessions:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
            self._sessions[threads] = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        return self._sessions[threads]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S] -> [B, C, h, w]``, image by image (the graph takes one)."""
        sess = self.session()
        name = sess.get_inputs()[0].name
        rows = [sess.run(None, {name: np.ascontiguousarray(xi[None].detach().float().cpu().numpy())})[0]
                for xi in x]  # B x [1, C, h, w]
        return torch.from_numpy(np.concatenate(rows)).to(x.device)  # [B, C, h, w]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pool(x))  # [B, C, h, w] -> [B, K]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class _Features(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_features(x)


def _calibration_pixels(encoder, images: Sequence[str]) -> list[np.ndarray]:
    from multimodal.io import load_image

    return [encoder.preprocess(load_image(ref).pixels)[None].numpy() for ref in images]  # N x [1, 3, S, S]


def export_encoder(name: str, out: Path, scheme: str, calibration: Sequence[str] = ()) -> dict:
    """Write ``name`` (a timm-based encoder, e.g. ``medany-lite0``) into ``out`` as ``scheme``; returns the
    manifest. ``calibration``: image files or ``sample:`` names whose activations set the int8 ranges."""
    if scheme not in SCHEMES:
        raise ValueError(scheme)
    onnx = require("onnx", "all")
    require("onnxruntime", "all")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from safetensors.torch import save_file

    encoder = create_encoder(name).eval()
    model = getattr(encoder, "model", None)
    if not all(hasattr(model, a) for a in ("forward_features", "global_pool", "classifier")):
        raise ModelLoadError(f"The encoder '{name}' is not a timm image model with a classifier head; "
                             "only those are exported to ONNX Runtime.")
    out.mkdir(parents=True, exist_ok=True)
    size = encoder.preprocess.size
    raw, pre = out / ".features.raw.onnx", out / ".features.onnx"
    with torch.no_grad():
        torch.onnx.export(_Features(model), (torch.zeros(1, 3, size, size),), str(raw), dynamo=False,
                          input_names=["pixels"], output_names=["features"], opset_version=17)
    quant_pre_process(str(raw), str(pre))  # shape inference and folding: BatchNorm into Conv, pads static
    raw.unlink()
    if scheme == "int8":
        pixels = _calibration_pixels(encoder, calibration)
        if not pixels:
            raise ValueError("int8 needs calibration images")

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.batches = iter({"pixels": p} for p in pixels)

            def get_next(self):
                return next(self.batches, None)

        quantize_static(str(pre), str(out / MODEL_FILE), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        pre.unlink()
    else:
        pre.replace(out / MODEL_FILE)
    onnx.checker.check_model(str(out / MODEL_FILE))
    head = {f"global_pool.{k}": v for k, v in model.global_pool.state_dict().items()}
    head.update({f"classifier.{k}": v.contiguous() for k, v in model.classifier.state_dict().items()})
    save_file(head, str(out / HEAD_FILE))
    manifest = {"kind": "encoder", "base": name, "scheme": scheme, "runtime": "onnxruntime",
                "format": "QDQ static, int8 weights per channel, uint8 activations" if scheme == "int8" else "fp32",
                "calibration_images": len(calibration) if scheme == "int8" else 0,
                "files": {f: (out / f).stat().st_size for f in (MODEL_FILE, HEAD_FILE)}}
    manifest["bytes"] = sum(manifest["files"].values())
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ModelLoadError(f"'{Path(folder).name}' holds no {MANIFEST}: write it with `medany quantize --encoder`.")
    return json.loads(path.read_text())


@register_family("onnx")
def build_onnx_encoder(folder: str):
    """``onnx:DIR`` -> the base encoder with its features computed by ONNX Runtime from ``DIR/encoder.onnx``."""
    from safetensors.torch import load_file

    path = Path(folder).expanduser()
    manifest = read_manifest(path)
    if manifest.get("kind") != "encoder" or not (path / MODEL_FILE).is_file():
        raise ModelLoadError(f"'{path.name}' is not an encoder folder written by `medany quantize --encoder`.")
    encoder = create_encoder(manifest["base"]).eval()
    model = encoder.model
    head = load_file(str(path / HEAD_FILE))
    model.global_pool.load_state_dict({k[12:]: v for k, v in head.items() if k.startswith("global_pool.")})
    model.classifier.load_state_dict({k[11:]: v for k, v in head.items() if k.startswith("classifier.")})
    encoder.model = OnnxFeatures(path / MODEL_FILE, model.global_pool, model.classifier, int(model.num_features),
                                 int(getattr(model, "num_classes", 0) or 0)).eval()
    encoder.name = f"onnx:{path}"
    encoder.source = f"{manifest['base']} via ONNX Runtime ({manifest['scheme']})"
    return encoder
