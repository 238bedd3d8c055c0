"""Text translation: by the stack's own LLM (offline, the default), or by a transformers seq2seq model.

No translation weights (Opus-MT, NLLB, Argos) are on the package registries, so
text is translated by the LLM (Qwen2.5 is multilingual; speech goes through
Whisper's own ``translate`` task instead). Users with a model hub can name a
transformers translation model: a Marian / Opus-MT pair (``Helsinki-NLP/opus-mt-es-en``,
CC-BY-4.0, one direction per model) or NLLB-200 / M2M100 (any direction; NLLB's
weights are CC-BY-NC-4.0: **non-commercial use only**). Loading never runs remote code.

    medany translate "Me duele la cabeza." --to en [--model Helsinki-NLP/opus-mt-es-en]
"""

from __future__ import annotations

from encoders.languages import check_language, language_name

from .errors import InputError, ModelLoadError, require

MAX_CHARS = 4000
PROMPT = ("Translate the text below into {language}. Write only the translation, keeping every number, name and "
          "medicine as it is.\n\n{text}")
NLLB_CODES = {"en": "eng_Latn", "es": "spa_Latn", "fr": "fra_Latn", "de": "deu_Latn", "pt": "por_Latn",
              "zh": "zho_Hans", "it": "ita_Latn", "nl": "nld_Latn", "ru": "rus_Cyrl", "ar": "arb_Arab",
              "hi": "hin_Deva", "ja": "jpn_Jpan", "ko": "kor_Hang", "tr": "tur_Latn", "pl": "pol_Latn"}
"""Whisper's language codes as NLLB-200's (FLORES-200) codes, for the languages the benchmark speaks and a few more."""


def translate_with_llm(assistant, text: str, target: str = "en", max_new_tokens: int | None = None) -> str:
    """``text`` in the ``target`` language, written by ``assistant``'s LLM (greedy)."""
    _check_text(text)
    language = language_name(check_language(target))
    budget = max_new_tokens or max(64, min(1024, len(text) // 2))
    return assistant.answer(PROMPT.format(language=language, text=text), max_new_tokens=budget).strip()


class Seq2SeqTranslator:
    """A transformers translation model (Marian, NLLB, M2M100) by hub id or local folder."""

    def __init__(self, model: str, device: str = "cpu"):
        transformers = require("transformers")
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(model, trust_remote_code=False)
            self.model = transformers.AutoModelForSeq2SeqLM.from_pretrained(model, trust_remote_code=False)
        except OSError as exc:  # not found, or offline
            raise ModelLoadError(f"Could not load the translation model {model!r} (offline? no such model?). "
                                 "Without one, translate_with_llm uses the stack's LLM.") from exc
        self.model.to(device).eval()
        self.kind = self.model.config.model_type  # "marian", "m2m_100" (NLLB too)
        self.name = model

    def translate(self, text: str, target: str = "en", source: str | None = None, max_new_tokens: int = 256) -> str:
        """``text`` (from ``source``, which NLLB / M2M100 need) in ``target`` (ignored by a Marian pair)."""
        import torch

        _check_text(text)
        target = check_language(target)
        kwargs = {}
        if self.kind == "m2m_100":
            if source is None:
                raise InputError("This model needs the source language (source='es').", code="missing_language")
            src, tgt = (self._code(check_language(source)), self._code(target))
            self.tokenizer.src_lang = src
            kwargs["forced_bos_token_id"] = self.tokenizer.convert_tokens_to_ids(tgt)
        batch = self.tokenizer(text, return_tensors="pt", truncation=True)
        with torch.no_grad():
            out = self.model.generate(**batch, max_new_tokens=max_new_tokens, num_beams=1, do_sample=False, **kwargs)
        return self.tokenizer.decode(out[0], skip_special_tokens=True).strip()

    def _code(self, language: str) -> str:
        """NLLB's code when the tokenizer knows it, else M2M100's plain code."""
        nllb = NLLB_CODES.get(language)
        if nllb and self.tokenizer.convert_tokens_to_ids(nllb) != self.tokenizer.unk_token_id:
            return nllb
        return getattr(self.tokenizer, "get_lang_token", lambda code: code)(language)


def _check_text(text) -> None:
    if not isinstance(text, str) or not text.strip():
        raise InputError("There is no text to translate.", code="empty_input")
    if len(text) > MAX_CHARS:
        raise InputError(f"The text is too long to translate at once (limit {MAX_CHARS} characters).",
                         code="too_large")
