"""Scores between generated and reference reports: CheXpert label F1 (per label, micro, macro), BLEU-4, ROUGE-L.

Label F1 compares the labels of each generated report with those of its reference
(the reference is the truth). A label is positive in a report by one of two rules:

- ``uncertain="positive"`` (the default, the common variant: F1CheXbert's "rrg"
  mode and most report-generation papers): 1 and -1 are positive; 0 and blank are
  not.
- ``uncertain="negative"`` (strict): only 1 is positive.

Per label: TP, FP, FN over the reports, precision, recall, F1. A label with no
positive in either the references or the generations has no defined F1 (None)
and is left out of the macro average (``labels_averaged`` says how many were
in); on a full test set every label has support and this equals scikit-learn's
macro. Micro F1 pools the TP/FP/FN of all labels. "F1-5" is the same over the
five CheXpert competition labels. No Finding is one of the 14, as in F1CheXbert.

BLEU-4 is sacrebleu's corpus BLEU with its defaults (13a tokenizer, uniform 4-gram
weights, brevity penalty, "exp" smoothing of n-gram orders with no match),
divided by 100 so that every score here is 0-1.
ROUGE-L is the mean over report pairs of rouge-score's ROUGE-L F-measure
(no stemming).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Sequence

from ..errors import require
from .phrases import FIVE, LABELS

Uncertain = Literal["positive", "negative"]
Row = dict[str, "int | None"]


@dataclass(frozen=True)
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        """2TP / (2TP + FP + FN); None when the label is positive nowhere (TP + FP + FN = 0)."""
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else None

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def as_dict(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "support": self.tp + self.fn,
                "precision": self.precision, "recall": self.recall, "f1": self.f1}


def positive(value: int | None, uncertain: Uncertain = "positive") -> bool:
    """Whether a label value counts as positive: 1 always; -1 when ``uncertain`` is ``"positive"``."""
    return value == 1 or (value == -1 and uncertain == "positive")


def counts(predicted: Sequence[Row], truth: Sequence[Row], hit: Callable[[int | None], bool],
           labels: Sequence[str] = LABELS) -> dict[str, Counts]:
    """Per label, TP/FP/FN of ``predicted`` against ``truth`` (paired rows) where ``hit(value)`` is the positive
    class."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predicted rows against {len(truth)} true rows")
    out = {}
    for name in labels:
        tp = fp = fn = 0
        for p, t in zip(predicted, truth):
            got, want = hit(p.get(name)), hit(t.get(name))
            tp += got and want
            fp += got and not want
            fn += want and not got
        out[name] = Counts(tp, fp, fn)
    return out


def summary(per_label: dict[str, Counts]) -> dict:
    """Micro F1 (pooled counts), macro F1 (mean of the defined per-label F1s) and how many labels it averaged."""
    pooled = sum(per_label.values(), Counts())
    defined = [c.f1 for c in per_label.values() if c.f1 is not None]
    return {"micro_f1": pooled.f1, "macro_f1": sum(defined) / len(defined) if defined else None,
            "labels_averaged": len(defined), "micro_precision": pooled.precision, "micro_recall": pooled.recall}


def label_f1(generated: Sequence[Row], reference: Sequence[Row], uncertain: Uncertain = "positive") -> dict:
    """CheXpert label F1 of generated against reference labels (module docstring): ``{"per_label", "all14",
    "five", "uncertain"}``."""
    per = counts(generated, reference, lambda v: positive(v, uncertain))
    return {"uncertain": uncertain, "per_label": {k: c.as_dict() for k, c in per.items()},
            "all14": summary(per), "five": summary({k: per[k] for k in FIVE})}


def bleu4(generated: Sequence[str], reference: Sequence[str]) -> float:
    """sacrebleu's corpus BLEU-4 of ``generated`` against one reference each, on a 0-1 scale."""
    sacrebleu = require("sacrebleu", "all")
    return sacrebleu.corpus_bleu(list(generated), [list(reference)]).score / 100


def rouge_l(generated: Sequence[str], reference: Sequence[str]) -> float:
    """The mean ROUGE-L F-measure (rouge-score, no stemming) of each generated report against its reference."""
    if not generated:
        return 0.0
    scorer = require("rouge_score.rouge_scorer", "all").RougeScorer(["rougeL"], use_stemmer=False)
    return sum(scorer.score(r, g)["rougeL"].fmeasure for g, r in zip(generated, reference)) / len(generated)


def agreement(predicted: Sequence[Row], gold: Sequence[Row]) -> dict:
    """How well a labeler's labels match gold labels, per value as in the CheXpert paper: F1 of ``positive``
    (1), ``negative`` (0), ``uncertain`` (-1) and ``mention`` (any of them, not blank), each per label with micro
    and macro; and the share of (report, label) cells exactly equal."""
    tasks = {"mention": lambda v: v is not None, "positive": lambda v: v == 1, "negative": lambda v: v == 0,
             "uncertain": lambda v: v == -1}
    out = {}
    for task, hit in tasks.items():
        per = counts(predicted, gold, hit)
        out[task] = {"per_label": {k: c.as_dict() for k, c in per.items()}, **summary(per)}
    cells = [(p.get(k), g.get(k)) for p, g in zip(predicted, gold) for k in LABELS]
    out["exact_cells"] = sum(a == b for a, b in cells) / len(cells) if cells else None
    out["exact_reports"] = (sum(all(p.get(k) == g.get(k) for k in LABELS) for p, g in zip(predicted, gold))
                            / len(gold) if gold else None)
    return out
