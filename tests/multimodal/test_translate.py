"""Text translation: the LLM path, and a transformers seq2seq path (a tiny random Marian, saved and reloaded)."""

from __future__ import annotations

import pytest

from multimodal.errors import InputError, ModelLoadError
from multimodal.translate import PROMPT, Seq2SeqTranslator, translate_with_llm


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    from multimodal.backbone import tiny_tokenizer

    folder = tmp_path_factory.mktemp("marian")
    tok = tiny_tokenizer()
    config = transformers.MarianConfig(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1,
                                       encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                                       decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=tok.pad_token_id,
                                       eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    transformers.set_seed(0)
    transformers.MarianMTModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_a_marian_model_loads_without_remote_code_and_translates(tiny_marian):
    translator = Seq2SeqTranslator(str(tiny_marian))
    assert translator.kind == "marian"
    said = translator.translate("Me duele la cabeza.", "en", max_new_tokens=6)
    assert isinstance(said, str) and said == translator.translate("Me duele la cabeza.", "en", max_new_tokens=6)
    with pytest.raises(InputError, match="no text"):
        translator.translate("  ")
    with pytest.raises(InputError, match="Unknown language"):
        translator.translate("hola", "klingon")


def test_a_missing_model_is_a_typed_error(tmp_path):
    with pytest.raises(ModelLoadError, match="Could not load the translation model"):
        Seq2SeqTranslator(str(tmp_path / "nowhere"))


def test_the_llm_is_asked_to_translate_and_keep_numbers(tmp_path):
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant
    from tests.scripted import scripted

    base = Assistant.load(StackConfig(llm="tiny-random", vision="", speech="", knowledge="none"))
    asked = []
    assistant = scripted(base, lambda prompt: asked.append(prompt) or ["I have a headache."])
    assert translate_with_llm(assistant, "Me duele la cabeza.", "en") == "I have a headache."
    assert PROMPT.format(language="English", text="Me duele la cabeza.") in asked[-1]


def test_the_cli_translates_with_a_named_model(tiny_marian, capsys):
    from multimodal import cli

    assert cli.main(["translate", "Me duele la cabeza.", "--to", "en", "--model", str(tiny_marian)]) == 0
    assert capsys.readouterr().out.endswith("\n")
