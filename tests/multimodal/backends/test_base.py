"""What every backend shares: token choice equal to HF generate's, stop ids, streamed text."""

import pytest
import torch

from multimodal.backends import GenerationSettings, choose_backend, stop_token_ids, text_pieces
from multimodal.backends.base import choose_token, logits_processors
from multimodal.errors import ModelLoadError


def test_shared_token_choice_reproduces_hf_generate(tiny_llm):
    """The llama.cpp loop's rule (HF logits processors on raw logits) gives HF generate's tokens."""
    llm, tok = tiny_llm
    prompt = tok("<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n", return_tensors="pt")["input_ids"]
    for settings in (GenerationSettings(12, 0.0, 1.0), GenerationSettings(12, 0.0, 1.3)):
        ref = llm.generate(prompt, attention_mask=torch.ones_like(prompt), pad_token_id=tok.pad_token_id,
                           eos_token_id=None, **settings.hf_kwargs())[0, prompt.shape[1]:].tolist()
        procs, ids, generated = logits_processors(settings), prompt, []
        with torch.no_grad():
            for _ in range(settings.max_new_tokens):
                token = choose_token(llm(ids).logits[0, -1], generated, settings, procs)
                generated.append(token)
                ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        assert generated == ref, settings


def test_sampling_settings_map_to_hf_and_back():
    s = GenerationSettings(max_new_tokens=5, temperature=0.7, repetition_penalty=1.1, top_p=0.9)
    assert s.hf_kwargs() == {"max_new_tokens": 5, "repetition_penalty": 1.1, "top_k": None, "do_sample": True,
                             "temperature": 0.7, "top_p": 0.9}
    names = [type(p).__name__ for p in logits_processors(s)]
    assert names == ["TemperatureLogitsWarper", "TopPLogitsWarper"]
    torch.manual_seed(0)
    logits = torch.tensor([0.0, 5.0, 4.9, -3.0])
    assert {choose_token(logits, [], s, logits_processors(s)) for _ in range(50)} == {1, 2}  # top-p drops 0 and 3


def test_repetition_penalty_is_hf_s_formula():
    from transformers import RepetitionPenaltyLogitsProcessor

    from multimodal.backends.base import penalize_repeats

    logits = torch.randn(50)
    generated = [3, 7, 7, 41, 3]
    ref = RepetitionPenaltyLogitsProcessor(1.3)(torch.tensor([generated]), logits.clone()[None])[0]
    torch.testing.assert_close(penalize_repeats(logits.clone(), generated, 1.3), ref, rtol=0, atol=0)


def test_stop_ids_cover_eos_and_the_end_of_turn_marker(tiny_llm):
    _, tok = tiny_llm
    ids = stop_token_ids(tok, type("Cfg", (), {"eos_token_id": [tok.pad_token_id]})())
    vocab = tok.get_vocab()
    assert {tok.eos_token_id, vocab["<|im_end|>"], tok.pad_token_id} <= ids


def test_text_pieces_never_split_a_character(tiny_llm):
    _, tok = tiny_llm
    text = "Fever 38.5 °C — 发烧 ✓"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text)  # byte-level: multi-byte characters span several ids
    pieces = list(text_pieces(tok, ids))
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)


def test_auto_backend_rule(monkeypatch):
    import multimodal.backends as b

    monkeypatch.setattr(b, "llamacpp_available", lambda: True)
    assert choose_backend("auto", "embedded") == "llamacpp"
    assert choose_backend("auto", "/models/x.gguf") == "llamacpp"
    assert choose_backend("auto", "embedded", device="cuda") == "transformers"
    assert choose_backend("auto", "Qwen/Qwen2.5-0.5B-Instruct") == "transformers"
    assert choose_backend("transformers", "embedded") == "transformers"
    with pytest.raises(ModelLoadError, match="runs GGUF files"):
        choose_backend("llamacpp", "tiny-random")
    with pytest.raises(ModelLoadError, match="Unknown backend"):
        choose_backend("vllm", "embedded")
    monkeypatch.setattr(b, "llamacpp_available", lambda: False)
    assert choose_backend("auto", "embedded") == "transformers"
    with pytest.raises(ModelLoadError, match="llama-cpp-python"):
        choose_backend("llamacpp", "embedded")
