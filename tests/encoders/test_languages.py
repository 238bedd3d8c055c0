"""Language codes: Whisper's 99 languages, by code or name; English-only models refuse the others."""

from __future__ import annotations

import pytest

pytest.importorskip("whisper")

from encoders.languages import check_language, language_name  # noqa: E402
from multimodal.errors import InputError  # noqa: E402


@pytest.mark.parametrize("given, code", [("es", "es"), ("ES", "es"), (" spanish ", "es"), ("German", "de"),
                                         ("zh", "zh"), ("en", "en")])
def test_codes_and_names_read_as_whisper_codes(given, code):
    assert check_language(given) == code


def test_names_come_from_whispers_table():
    assert [language_name(c) for c in ("es", "de", "zh", "xx")] == ["Spanish", "German", "Chinese", "xx"]


def test_unknown_and_unsupported_languages_are_typed_errors():
    with pytest.raises(InputError, match="Unknown language 'klingon'") as unknown:
        check_language("klingon")
    assert unknown.value.code == "unknown_language"
    with pytest.raises(InputError, match="English only; Spanish needs a multilingual one") as english_only:
        check_language("es", multilingual=False)
    assert english_only.value.code == "unsupported_language"
    assert check_language("en", multilingual=False) == "en"
