"""How the reference harnesses score answers, rewritten here: pure functions of strings and numbers.

Medical VQA (VQA-RAD, SLAKE, PathVQA), generated short answers:

- :func:`exact_match`: lmms-eval's SLAKE task (``lmms_eval/tasks/slake/utils.py``):
  :func:`normalize_answer` on both sides (lower case, parenthesised text and punctuation
  dropped, ``x ray`` -> ``xray``, yes/no synonyms folded), then string equality.
- :func:`closed_hit`: LLaVA-Med's closed-question accuracy (``llava/eval/run_eval_batch.py``):
  the answer, through :func:`normalize_word`, is a *substring* of the normalised prediction
  (so "I do not know" counts for "no", as it does there).
- :func:`open_recall`: LLaVA-Med's open-question score (``calculate_f1score``'s recall):
  the share of the answer's words the prediction contains, word counts as there.

Multiple choice by log-likelihood (MedQA, PubMedQA, MMLU), as lm-evaluation-harness's
``multiple_choice`` output type: :func:`choice_scores` gives ``acc`` (the choice of highest
summed log-probability is the gold one) and ``acc_norm`` (the same after dividing each by
its choice's length in characters); ties go to the first choice (``np.argmax``).

:func:`summarize` averages per-item scores over all items and per subgroup.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Callable, Iterable, Mapping, Sequence

# -- LLaVA-Med's normalisation (the VQA evaluation's rules) ------------------------------------------

# Punctuation LLaVA-Med strips or turns into spaces; the apostrophe and the period are not in it.
_LLAVA_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
                "?", "!")
_THOUSANDS = re.compile(r"(\d)(,)(\d)")
_PERIOD = re.compile(r"\.(?!\d)")  # a period not followed by a digit (a decimal point stays)
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
            "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
# The VQA evaluation's contractions: a written-without-apostrophes word becomes the apostrophe form. Its table
# lists, for each form below, the form with each one of its apostrophes left out ("dont", "couldnt've",
# "couldn'tve"); :func:`_contractions` rebuilds exactly those keys.
_CONTRACTED = (
    "ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't haven't he'd "
    "he'd've he's how'd how'll how's isn't it'd it'd've it'll ma'am mightn't mightn't've might've mustn't must've "
    "needn't not've o'clock 'ow's'at shan't she'd've should've shouldn't shouldn't've somebody'd've somebody'll "
    "somebody's someone'd someone'd've someone'll someone's something'd something'd've something'll that's "
    "there'd there'd've there're there's they'd they'd've they'll they're they've 'twas wasn't we'd've we've "
    "weren't what'll what're what's what've when's where'd where's where've who'd who'd've who'll who's who've "
    "why'll why're why's won't would've wouldn't wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll "
    "you're you've").split()


def _contractions() -> dict[str, str]:
    table = {}
    for form in _CONTRACTED:
        cuts = [i for i, ch in enumerate(form) if ch == "'"]
        for i in cuts:
            table[form[:i] + form[i + 1:]] = form
    table["somebody'd"] = "somebodyd"  # the table's one reversed entry, kept so scores match
    return table


_CONTRACTIONS = _contractions()


def normalize_word(text: str) -> str:
    """LLaVA-Med's ``normalize_word`` on a lower-cased answer.

    Each punctuation mark is removed where it touches a space (or the text has a
    thousands comma) and becomes a space elsewhere; periods not before a digit go
    (at most 32, as ``re.sub``'s count there); number words become digits
    ("two" -> "2", "none" -> "0"); articles go; contractions get their apostrophe.
    """
    text = text.lower()
    out = text
    thousands = _THOUSANDS.search(text) is not None
    for p in _LLAVA_PUNCT:
        out = out.replace(p, "" if (p + " " in text or " " + p in text or thousands) else " ")
    out = _PERIOD.sub("", out, count=32)
    words = [_NUMBERS.get(w, w) for w in out.split()]
    words = [_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES]
    return " ".join(words).replace(",", "")


def closed_hit(prediction: str, answer: str) -> bool:
    """LLaVA-Med's closed-question hit: the normalised answer occurs in the normalised prediction."""
    return normalize_word(answer) in normalize_word(prediction)


def word_prf(prediction: str, answer: str) -> tuple[float, float, float]:
    """LLaVA-Med's ``calculate_f1score``: ``(f1, precision, recall)`` over normalised words.

    True positives count the prediction's occurrences of the words both share; an empty
    side or no shared word scores 0 throughout.
    """
    pred, ref = Counter(normalize_word(prediction).split()), Counter(normalize_word(answer).split())
    if not pred or not ref:
        return 0.0, 0.0, 0.0
    tp = sum(c for w, c in pred.items() if w in ref)
    fp = sum(c for w, c in pred.items() if w not in ref)
    fn = sum(c for w, c in ref.items() if w not in pred)
    if tp == 0:
        return 0.0, 0.0, 0.0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 2 * precision * recall / (precision + recall), precision, recall


def open_recall(prediction: str, answer: str) -> float:
    """LLaVA-Med's open-question score: the recall of :func:`word_prf`."""
    return word_prf(prediction, answer)[2]


# -- lmms-eval's SLAKE normalisation ----------------------------------------------------------------------

_YES = {"yes", "yeah", "yep", "true", "是", "是的", "有", "包含", "可以", "能", "会", "正常"}
_NO = {"no", "nope", "false", "否", "不是", "没有", "无", "不包含", "不能", "不会", "不可以", "不正常", "异常"}
_ZH_PUNCT = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～、，。；：《》？【】（）"
_TO_SPACE = str.maketrans({ch: " " for ch in string.punctuation + _ZH_PUNCT})


def normalize_answer(text) -> str:
    """lmms-eval's SLAKE ``normalize_answer``: parenthesised text and punctuation become spaces, spaces
    collapse, ``x ray``/``xray`` -> ``xray``, yes/no synonyms (English and Chinese) -> ``yes``/``no``."""
    text = "" if text is None else str(text)
    text = text.strip().lower()
    text = re.sub(r"\([^)]*\)", " ", text)
    text = re.sub(r"（[^）]*）", " ", text)
    text = re.sub(r"\s+", " ", text.translate(_TO_SPACE)).strip()
    if text in ("x ray", "xray"):
        return "xray"
    return "yes" if text in _YES else "no" if text in _NO else text


def exact_match(prediction: str, answer: str) -> bool:
    """lmms-eval's SLAKE correctness: equal after :func:`normalize_answer`."""
    return normalize_answer(prediction) == normalize_answer(answer)


def is_closed_answer(answer: str) -> bool:
    """Whether a VQA answer is closed-ended when the data set does not say: it is yes or no."""
    return normalize_answer(answer) in ("yes", "no")


# -- lm-evaluation-harness multiple choice -----------------------------------------------------------------


def choice_scores(loglikelihoods: Sequence[float], choices: Sequence[str], gold: int) -> dict:
    """lm-eval's ``acc`` / ``acc_norm`` for one question, with both predicted indices.

    ``acc_norm`` divides each summed log-likelihood by ``len(choice)`` (characters of the
    choice string, without the space that precedes it in the continuation).
    """
    if len(loglikelihoods) != len(choices) or not choices:
        raise ValueError("One log-likelihood per choice is needed.")
    if not 0 <= gold < len(choices):
        raise ValueError(f"The gold index {gold} is not one of the {len(choices)} choices.")
    pred = _argmax(list(loglikelihoods))
    pred_norm = _argmax([ll / len(c) for ll, c in zip(loglikelihoods, choices)])
    return {"pred": pred, "pred_norm": pred_norm, "acc": float(pred == gold), "acc_norm": float(pred_norm == gold)}


def _argmax(values: list[float]) -> int:
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i  # strictly greater: a tie keeps the first, as np.argmax
    return best


# -- aggregation ---------------------------------------------------------------------------------------------


def mean(values: Iterable[float]) -> float | None:
    """The mean, or None for no values (JSON null: "no items of this kind", not a score of 0)."""
    values = list(values)
    return sum(values) / len(values) if values else None


def vqa_metrics(records: Sequence[Mapping]) -> dict:
    """Scores of VQA item records (``answer_type``, ``exact_match``, ``closed_hit`` / ``open_recall``)."""
    closed = [r for r in records if r["answer_type"] == "closed"]
    opened = [r for r in records if r["answer_type"] == "open"]
    return {"n": len(records), "exact_match": mean(float(r["exact_match"]) for r in records),
            "closed_n": len(closed), "closed_accuracy": mean(float(r["closed_hit"]) for r in closed),
            "open_n": len(opened), "open_recall": mean(r["open_recall"] for r in opened)}


def choice_metrics(records: Sequence[Mapping]) -> dict:
    """Scores of multiple-choice item records (``acc``, ``acc_norm``): their means."""
    return {"n": len(records), "acc": mean(r["acc"] for r in records), "acc_norm": mean(r["acc_norm"] for r in records)}


def summarize(records: Sequence[Mapping], metrics: Callable[[Sequence[Mapping]], dict],
              groups: Sequence[str]) -> dict:
    """``{"metrics": all items, "groups": {field: {value: metrics of its items}}}``, values sorted."""
    out: dict = {"metrics": metrics(records), "groups": {}}
    for field in groups:
        values = sorted({str(r[field]) for r in records if r.get(field) not in (None, "")})
        if values:
            out["groups"][field] = {v: metrics([r for r in records if str(r.get(field)) == v]) for v in values}
    return out
