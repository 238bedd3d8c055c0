"""The English word list that tells an ordinary word from a name."""

from __future__ import annotations

from multimodal.knowledge import english


def test_everyday_words_are_common_and_drug_names_are_not():
    assert english.is_common("long") and english.is_common("Diamonds")
    assert not english.is_common("naproxen") and not english.is_common("aspirin")
    assert not english.is_common("long pepper")  # a phrase is never one everyday word


def test_a_misspelling_is_not_english_but_a_spelled_word_is():
    assert english.is_english("lasted") and english.is_english("headache")
    assert not english.is_english("headake") and not english.is_english("naproxin")
    assert english.frequency("long") > english.frequency("lasted") > 0
