"""CTranslate2 -> openai-whisper conversion: format parsing, name mapping, cache, real transcript."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

whisper = pytest.importorskip("whisper")

from encoders import whisper_ct2  # noqa: E402
from encoders.whisper_encoder import tiny_whisper  # noqa: E402
from multimodal.evaluate import normalize_words, word_edits  # noqa: E402

REFERENCE = "The patient reports chest pain and shortness of breath for two days."
TINY_EN_DIMS = {
    "n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 384, "n_audio_head": 6, "n_audio_layer": 4,
    "n_vocab": 51864, "n_text_ctx": 448, "n_text_state": 384, "n_text_head": 6, "n_text_layer": 4,
}  # fmt: skip


def word_errors(hyp: str, ref: str) -> int:
    """Word-level edit distance after lower-casing and dropping punctuation (the WER numerator)."""
    return word_edits(normalize_words(ref), normalize_words(hyp))


def _write_ct2(model_dir, model) -> None:
    """Write ``model`` the way CTranslate2's Whisper converter does (fused q/k/v, fp16)."""
    sd = {k: v.detach().half().numpy() for k, v in model.state_dict().items()}
    dims = model.dims
    out: dict[str, np.ndarray] = {
        "encoder/conv1/weight": sd["encoder.conv1.weight"], "encoder/conv1/bias": sd["encoder.conv1.bias"],
        "encoder/conv2/weight": sd["encoder.conv2.weight"], "encoder/conv2/bias": sd["encoder.conv2.bias"],
        "encoder/position_encodings/encodings": sd["encoder.positional_embedding"],
        "encoder/layer_norm/gamma": sd["encoder.ln_post.weight"], "encoder/layer_norm/beta": sd["encoder.ln_post.bias"],
        "encoder/num_heads": np.array(dims.n_audio_head, np.int16),
        "decoder/embeddings/weight": sd["decoder.token_embedding.weight"],
        "decoder/position_encodings/encodings": sd["decoder.positional_embedding"],
        "decoder/layer_norm/gamma": sd["decoder.ln.weight"], "decoder/layer_norm/beta": sd["decoder.ln.bias"],
        "decoder/num_heads": np.array(dims.n_text_head, np.int16),
        "decoder/scale_embeddings": np.array(0, np.int8),
    }  # fmt: skip

    def linear(dst, src):
        out[f"{dst}/weight"], out[f"{dst}/bias"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def norm(dst, src):
        out[f"{dst}/gamma"], out[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    for side, n in (("encoder", dims.n_audio_layer), ("decoder", dims.n_text_layer)):
        for i in range(n):
            p, q = f"{side}.blocks.{i}", f"{side}/layer_{i}"
            zero = np.zeros_like(sd[f"{p}.attn.query.bias"])
            qkv = [sd[f"{p}.attn.{x}.weight"] for x in ("query", "key", "value")]
            out[f"{q}/self_attention/linear_0/weight"] = np.concatenate(qkv)
            out[f"{q}/self_attention/linear_0/bias"] = np.concatenate(
                [sd[f"{p}.attn.query.bias"], zero, sd[f"{p}.attn.value.bias"]]
            )
            linear(f"{q}/self_attention/linear_1", f"{p}.attn.out")
            norm(f"{q}/self_attention/layer_norm", f"{p}.attn_ln")
            linear(f"{q}/ffn/linear_0", f"{p}.mlp.0")
            linear(f"{q}/ffn/linear_1", f"{p}.mlp.2")
            norm(f"{q}/ffn/layer_norm", f"{p}.mlp_ln")
            if side == "decoder":
                linear(f"{q}/attention/linear_0", f"{p}.cross_attn.query")
                kv = [sd[f"{p}.cross_attn.key.weight"], sd[f"{p}.cross_attn.value.weight"]]
                out[f"{q}/attention/linear_1/weight"] = np.concatenate(kv)
                out[f"{q}/attention/linear_1/bias"] = np.concatenate([zero, sd[f"{p}.cross_attn.value.bias"]])
                linear(f"{q}/attention/linear_2", f"{p}.cross_attn.out")
                norm(f"{q}/attention/layer_norm", f"{p}.cross_attn_ln")

    def string(s: str) -> bytes:
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"

    dtype_ids = {np.dtype(np.float16): 4, np.dtype(np.int16): 2, np.dtype(np.int8): 1}
    blob = struct.pack("<I", 6) + string("WhisperSpec") + struct.pack("<II", 3, len(out))
    for name, arr in sorted(out.items()):
        data = np.ascontiguousarray(arr).tobytes()
        blob += string(name) + struct.pack("<B", arr.ndim) + struct.pack(f"<{arr.ndim}I", *arr.shape)
        blob += struct.pack("<BI", dtype_ids[arr.dtype], len(data)) + data
    blob += struct.pack("<I", 1) + string("decoder/projection/weight") + string("decoder/embeddings/weight")
    (model_dir / "model.bin").write_bytes(blob)
    (model_dir / "config.json").write_text(json.dumps({"alignment_heads": [[1, 0], [1, 1]]}))


@pytest.fixture
def tiny_ct2(tmp_path):
    model = tiny_whisper(seed=3).whisper_model()
    _write_ct2(tmp_path, model)
    return tmp_path, model


def test_read_ct2_resolves_aliases(tiny_ct2):
    model_dir, _ = tiny_ct2
    spec, variables = whisper_ct2.read_ct2_model(model_dir / "model.bin")
    assert spec == "WhisperSpec"
    assert variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]
    assert int(variables["decoder/num_heads"]) == 2


def test_convert_round_trips_exactly(tiny_ct2):
    model_dir, model = tiny_ct2
    dims, state = whisper_ct2.convert_ct2_to_whisper(model_dir)
    assert dims == vars(model.dims)
    ref = model.state_dict()
    assert set(state) == set(ref)
    for k, v in state.items():
        assert v.dtype == torch.float16 and v.shape == ref[k].shape, k
        torch.testing.assert_close(v, ref[k].half(), rtol=0, atol=0, msg=k)


def test_built_model_matches_source(tiny_ct2):
    model_dir, model = tiny_ct2
    dims, state = whisper_ct2.convert_ct2_to_whisper(model_dir)
    rebuilt = whisper_ct2.build_whisper(dims, state, [[1, 0], [1, 1]])
    assert not rebuilt.training and rebuilt.decoder.mask.shape == (64, 64)
    assert rebuilt.alignment_heads.to_dense().sum() == 2
    mel = torch.randn(1, 80, 3000)
    tokens = torch.tensor([[50257, 50362, 383, 5827]])
    with torch.no_grad():
        want = model.half().float()(mel, tokens)  # the source rounded to fp16, as stored
        got = rebuilt(mel, tokens)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_cache_is_written_once_and_reused(tiny_ct2, tmp_path, monkeypatch):
    model_dir, _ = tiny_ct2
    monkeypatch.setenv("MEDANY_CACHE", str(tmp_path / "cache"))
    dims, state, heads = whisper_ct2.convert_cached(model_dir, name="tiny.x")
    files = sorted(p.name for p in (tmp_path / "cache" / "whisper").iterdir())
    assert [f.rsplit(".", 1)[1] for f in files] == ["json", "safetensors"] and files[0].startswith("tiny.x-")
    monkeypatch.setattr(whisper_ct2, "convert_ct2_to_whisper", lambda _: pytest.fail("cache not used"))
    dims2, state2, heads2 = whisper_ct2.convert_cached(model_dir, name="tiny.x")
    assert dims2 == dims and heads2 == heads == [[1, 0], [1, 1]]
    assert all(torch.equal(state[k], state2[k]) for k in state)


@pytest.mark.slow
def test_embedded_tiny_en_loads_strict():
    dims, state = whisper_ct2.convert_ct2_to_whisper(whisper_ct2.embedded_model_dir())
    assert dims == TINY_EN_DIMS
    model = whisper.model.Whisper(whisper.model.ModelDimensions(**dims))
    model.load_state_dict(state, strict=True)
    assert not model.is_multilingual


@pytest.mark.slow
def test_embedded_transcribes_speech():
    from multimodal.io.tts import synthesize

    model = whisper_ct2.load_embedded_whisper()
    clip = synthesize(REFERENCE)
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(clip.samples)))
    options = whisper.DecodingOptions(language="en", without_timestamps=True, fp16=False)
    result = whisper.decode(model, mel, options)
    assert word_errors(result.text, REFERENCE) <= 1, result.text


@pytest.mark.slow
def test_embedded_base_is_assembled_verified_and_a_ctranslate2_folder():
    folder = whisper_ct2.embedded_base_dir()
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "config.json", "model.bin", "model.bin.verified.json", "tokenizer.json", "vocabulary.json"]
    assert (folder / "model.bin").stat().st_size == whisper_ct2.WHISPER_BASE.size
    dims, _ = whisper_ct2.convert_ct2_to_whisper(folder)
    assert dims["n_vocab"] == 51865 and dims["n_audio_state"] == 512 and dims["n_text_layer"] == 6
