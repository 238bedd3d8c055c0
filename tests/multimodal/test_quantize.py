"""Quantized forms: schemes keep a model's outputs close, ``medany quantize`` writes a folder that loads back
(transformers torchao safetensors, llama.cpp GGUF, ONNX Runtime encoder), bad requests get typed errors."""

import json

import pytest
import torch

from multimodal.backbone import load_llm
from multimodal.quantize import (
    MANIFEST,
    OutputFolderError,
    UnknownSchemeError,
    base_name,
    main,
    quantize,
    quantize_llm,
)


def _logits(model, ids):
    with torch.no_grad():
        return model(ids).logits.float()


@pytest.mark.parametrize("scheme, atol", [("fp32", 0.0), ("bf16", 0.05), ("int8-weight", 0.05),
                                          ("int8-dynamic", 0.05)])
def test_schemes_keep_the_logits_close(scheme, atol):
    model, _, _ = load_llm("tiny-random")
    ids = torch.randint(0, 256, (1, 16))
    ref = _logits(model, ids)
    out = _logits(quantize_llm(model, scheme), ids)
    # measured: bf16 0.012, int8-weight 0.005, int8-dynamic 0.009 max |diff| on logits of spread 0.2
    assert (out - ref).abs().max() <= atol
    if scheme.startswith("int8"):
        w = model.model.layers[0].mlp.up_proj.weight
        assert type(w).__name__ == "Int8Tensor"
        assert model.lm_head.weight.dtype == torch.float32  # the output head and embeddings stay fp32


def test_quantize_writes_a_folder_that_loads_back(tmp_path, capsys):
    out = tmp_path / "int8"
    assert quantize(str(out), "int8-dynamic", llm="tiny-random") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8"]  # nothing written beside the folder
    assert not (out / ".work").exists()
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["base"] == "tiny-random" and manifest["scheme"] == "int8-dynamic"
    assert not list(out.glob("*.bin")) and not list(out.glob("*.pt"))  # safetensors only
    assert f"--llm {out}" in capsys.readouterr().out

    model, _, _ = load_llm("tiny-random")
    quantize_llm(model, "int8-dynamic")
    loaded, tok, _ = load_llm(str(out))  # the stack's path for a model folder
    assert type(loaded.model.layers[1].self_attn.q_proj.weight).__name__ == "Int8Tensor"
    ids = torch.randint(0, 256, (1, 12))
    assert torch.equal(_logits(loaded, ids), _logits(model, ids))
    assert base_name(str(out)) == "tiny-random"  # shipped projectors of the base apply

    assert quantize(str(out), "bf16", llm="tiny-random") == 0  # a folder written before is replaced
    assert json.loads((out / MANIFEST).read_text())["scheme"] == "bf16"
    loaded, _, _ = load_llm(str(out), dtype=torch.bfloat16)
    assert loaded.dtype == torch.bfloat16


def test_bad_requests_are_typed_errors(tmp_path, monkeypatch, capsys):
    with pytest.raises(UnknownSchemeError, match="int8-weight"):
        quantize(str(tmp_path / "a"), "int4", llm="tiny-random")
    with pytest.raises(UnknownSchemeError, match="fp32, int8"):
        quantize(str(tmp_path / "a"), "int8-weight", encoder="medany-lite0")
    taken = tmp_path / "mine"
    taken.mkdir()
    (taken / "notes.txt").write_text("keep me")
    with pytest.raises(OutputFolderError, match="other files"):
        quantize(str(taken), "fp32", llm="tiny-random")
    assert (taken / "notes.txt").read_text() == "keep me"
    with pytest.raises(OutputFolderError, match="is a file"):
        quantize(str(taken / "notes.txt"), "fp32", llm="tiny-random")
    monkeypatch.setenv("MEDANY_CACHE", str(tmp_path / "cache"))
    with pytest.raises(OutputFolderError, match="weight cache"):
        quantize(str(tmp_path / "cache" / "llm" / "x"), "fp32", llm="tiny-random")
    assert not (tmp_path / "a").exists() and not (tmp_path / "cache" / "llm" / "x").exists()
    assert main([str(tmp_path / "b"), "--llm", "tiny-random", "--scheme", "int3"]) == 2
    assert "Unknown quantization scheme 'int3'" in capsys.readouterr().err
    assert main([str(tmp_path / "b"), "--scheme", "fp32"]) == 2  # neither --llm nor --encoder


def test_base_name_leaves_other_names_alone(tmp_path):
    assert base_name("embedded") == "embedded"
    assert base_name("medany-lite0") == "medany-lite0"
    assert base_name(str(tmp_path)) == str(tmp_path)  # a folder without a manifest
    (tmp_path / MANIFEST).write_text(json.dumps({"base": "embedded", "file": "model.gguf"}))
    (tmp_path / "model.gguf").write_bytes(b"")
    (tmp_path / "other.gguf").write_bytes(b"")
    assert base_name(str(tmp_path / "model.gguf")) == "embedded"
    assert base_name(str(tmp_path / "other.gguf")) == str(tmp_path / "other.gguf")


@pytest.mark.slow
def test_gguf_requantized_by_llama_cpp_loads_and_answers_alike(tmp_path):
    pytest.importorskip("llama_cpp")
    from multimodal.config import StackConfig
    from multimodal.stack import StackSpec, build_stack

    out = tmp_path / "q8"
    assert quantize(str(out), "gguf-q8_0", llm="embedded-small", threads=1) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    gguf = out / manifest["file"]
    assert manifest["base"] == "embedded-small" and gguf.stat().st_size == manifest["bytes"]
    kw = dict(vision="medany-lite0", speech="", threads=1, context=512)
    stacks = [build_stack(StackSpec.from_config(StackConfig(llm=llm, **kw))) for llm in ("embedded-small", str(gguf))]
    # the quantized file takes the shipped image projector of its base
    assert stacks[1].info["image"]["projector"]["name"] == stacks[0].info["image"]["projector"]["name"]
    ids = stacks[0].tokenizer("The patient has a fever and a dry cough", return_tensors="pt").input_ids[0]
    a, b = (s.backend.sequence_logits(ids) for s in stacks)
    assert a.shape == b.shape
    # Q4_1 -> Q8_0 re-quantizes the Q4_1 values: measured max |diff| 0.55, same argmax at 8 of 9 positions
    assert (a.argmax(-1) == b.argmax(-1)).float().mean() >= 0.75
