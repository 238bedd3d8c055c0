"""The ConText engine: trigger directions, scope ends, windows, precedence, pseudo-triggers."""

from multimodal.context import Rules, Trigger, words

RULES = Rules(triggers=(
    Trigger(words("no", "without"), "negated"),
    Trigger(words("is not seen", "has resolved"), "negated", "backward", window=4),
    Trigger("normal", "negated", window=2, stops=","),
    Trigger("within normal limits", "negated", "forward", window=1),
    Trigger("within normal limits", "negated", "backward", window=6),
    Trigger("possible", "uncertain"),
    Trigger("cannot be excluded", "uncertain", "backward", strong=True),
    Trigger("no change", "pseudo", "both"),
), terminations=r"\bbut\b")


def said(sentence: str, mention: str) -> str:
    at = sentence.index(mention)
    return RULES.assertion(sentence, at, at + len(mention))


def test_forward_negation_covers_a_list_until_a_termination_term():
    s = "no effusion or pneumothorax but cardiomegaly"
    assert [said(s, m) for m in ("effusion", "pneumothorax", "cardiomegaly")] == ["negated", "negated", "present"]


def test_backward_triggers_cover_what_precedes_them_within_their_window():
    assert said("pneumothorax is not seen", "pneumothorax") == "negated"
    assert said("the small left apical pneumothorax has resolved", "pneumothorax") == "negated"
    assert said("pneumothorax in the right upper zone near the apex is not seen", "pneumothorax") == "present"


def test_a_window_and_a_stop_keep_a_trigger_local():
    assert said("normal heart size", "heart size") == "negated"
    assert said("normal heart size, large effusion", "effusion") == "present"
    assert said("normal size of the right lobe effusion", "effusion") == "present"


def test_one_phrase_may_trigger_in_both_directions():
    """Two triggers on the same words (each direction its own window) both count: the bug where the second was
    dropped as an overlap of the first left "the silhouette is within normal limits" unnegated."""
    assert said("the cardiomediastinal silhouette is within normal limits", "cardiomediastinal silhouette") == "negated"


def test_strong_uncertainty_wins_over_negation_and_negation_over_uncertainty():
    assert said("no pneumonia cannot be excluded", "pneumonia") == "uncertain"
    assert said("no possible pneumonia", "pneumonia") == "negated"
    assert said("possible pneumonia", "pneumonia") == "uncertain"


def test_a_pseudo_trigger_claims_its_words():
    assert said("no change in the effusion", "effusion") == "present"


def test_sentences_end_the_scope_and_decimals_do_not_end_sentences():
    rules = Rules(triggers=(Trigger("no", "negated"),), boundaries=r"(?<!\d)\.(?!\d)|[;\n]")
    text = "No effusion. A 1.5 cm nodule; no mass"
    spans = rules.sentences(text)
    assert [text[a:b].strip() for a, b in spans] == ["No effusion", "A 1.5 cm nodule", "no mass"]
    assert rules.assertion("A 1.5 cm nodule", 9, 15) == "present"
