"""Language codes of speech and answers: Whisper's table of its 99 languages (ISO 639-1 codes)."""

from __future__ import annotations

from multimodal.errors import InputError, require


def language_name(code: str) -> str:
    """The English name of a Whisper language code (``"de"`` -> ``"German"``), or the code itself."""
    tokenizer = require("whisper.tokenizer", "all")
    return tokenizer.LANGUAGES[code].title() if code in tokenizer.LANGUAGES else code


def check_language(code: str, multilingual: bool = True) -> str:
    """``code`` (``"es"``, ``"ES"``, ``"spanish"``) as Whisper's language code, or an :class:`InputError`
    naming what is accepted; ``multilingual=False`` (an English-only model) accepts English alone."""
    tokenizer = require("whisper.tokenizer", "all")
    key = str(code).strip().lower()
    key = tokenizer.TO_LANGUAGE_CODE.get(key, key)
    if key not in tokenizer.LANGUAGES:
        raise InputError(f"Unknown language {code!r}: use an ISO 639-1 code Whisper knows (en, es, de, fr, ...).",
                         code="unknown_language")
    if key != "en" and not multilingual:
        raise InputError(f"This Whisper model understands English only; {tokenizer.LANGUAGES[key].title()} needs a "
                         "multilingual one (speech 'medany-whisper-base').", code="unsupported_language")
    return key
