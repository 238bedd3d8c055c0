import pytest
import torch

from multimodal.backbone import load_llm, resolve_gguf
from multimodal.errors import ModelLoadError


def test_tiny_llm_is_deterministic():
    a, tok, info = load_llm("tiny-random")
    b, _, _ = load_llm("tiny-random")
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), name
    assert info.params == sum(p.numel() for p in a.parameters())
    assert tok.decode(tok("héllo ✓")["input_ids"]) == "héllo ✓"


def test_missing_gguf_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="GGUF file not found: nope.gguf"):
        resolve_gguf(str(tmp_path / "nope.gguf"))


def test_unknown_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="internet"):
        load_llm("medany-test/does-not-exist")


@pytest.mark.slow
def test_gguf_cache_matches_direct_gguf_load(embedded_llm):
    """The safetensors cache must give the same logits as transformers' own GGUF loader."""
    import transformers

    cached, tok, info = embedded_llm
    gguf = resolve_gguf("embedded-small")
    assert "safetensors cache" in info.source
    direct = transformers.AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    ids = tok("The chest X-ray shows", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(cached(ids).logits, direct(ids).logits, rtol=0, atol=0)


@pytest.mark.slow
def test_second_load_uses_the_cache(embedded_llm):
    _, _, first = embedded_llm
    _, _, again = load_llm("embedded-small")
    assert again.cached
    assert again.load_s < 10
    assert again.params == first.params
