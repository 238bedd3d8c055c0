"""How common an English word is, so that linking tells a name from an ordinary word.

Two mistakes it prevents: correcting a correctly spelled word into a concept
("lasted" is one letter from *Lastet*, a brand of etoposide), and reading an ordinary
word as a name another vocabulary gives a concept ("long" is cloves in Hindi, "sits"
a chemical's acronym). Counts are pyspellchecker's English frequency list (MIT;
160,572 words counted in OpenSubtitles), read from the installed package's data.
"""

from __future__ import annotations

from functools import lru_cache

COMMON = 5000
"""A word counted this often or more is an everyday word ("sits": 21,097; "aspirin", 3,705, is not)."""


@lru_cache(maxsize=1)
def _counts() -> dict[str, int]:
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1).word_frequency.dictionary


def frequency(word: str) -> int:
    """How often the single word ``word`` occurs in the English list (0: not an English word)."""
    return int(_counts().get(word.strip().lower(), 0))


def is_english(word: str) -> bool:
    """``word`` is spelled as an English word (so it is no misspelling of a concept's name)."""
    return frequency(word) > 0


def is_common(name: str, at_least: int = COMMON) -> bool:
    """``name`` is one everyday English word: as another vocabulary's name for a concept, a homograph."""
    return " " not in name.strip() and frequency(name) >= at_least
