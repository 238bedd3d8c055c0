"""Report metrics that run offline: a CheXpert-style labeler, label F1, BLEU-4, ROUGE-L, ReXrank files.

    from multimodal.reportmetrics import label, score_reports
    label("Small left pleural effusion. No pneumothorax.")        # the 14 labels: 1 / 0 / -1 / None
    score_reports(generated, references)                         # label F1, BLEU-4, ROUGE-L

``medany eval-reports GEN REF`` is the command line (:mod:`.command`); docs/report-metrics.md
says what each number means. Learned metrics (RadGraph-F1, CheXbert, GREEN) are plug-ins
(:mod:`.plugins`) that run only where their package and weights are installed.
"""

from __future__ import annotations

import json
from pathlib import Path

from .labeler import label, label_many, mentions
from .phrases import FIVE, LABELS
from .scores import agreement, bleu4, label_f1, rouge_l

FIXTURES = Path(__file__).resolve().parent / "fixtures"
"""The hand-labelled reports: ``labeler_dev.jsonl`` (the rules were developed on it) and ``labeler_test.jsonl``
(written before the rules, held out)."""


def fixture_rows(split: str) -> list[dict]:
    """The hand-labelled reports of ``split`` (``"dev"`` or ``"test"``): ``[{"id", "text", "labels"}]``, where
    ``labels`` has the 14 labels (absent in the file: blank, None)."""
    rows = [json.loads(line) for line in (FIXTURES / f"labeler_{split}.jsonl").read_text().splitlines() if line]
    return [{**r, "labels": {k: r["labels"].get(k) for k in LABELS}} for r in rows]


def check_labeler(split: str) -> dict:
    """:func:`.scores.agreement` of the labeler with the gold labels of fixture ``split``, and the reports it
    got wrong."""
    rows = fixture_rows(split)
    predicted = label_many(r["text"] for r in rows)
    result = agreement(predicted, [r["labels"] for r in rows])
    result["reports"] = len(rows)
    result["wrong"] = [{"id": r["id"], "text": r["text"],
                        "labels": {k: [r["labels"][k], p[k]] for k in LABELS if r["labels"][k] != p[k]}}
                       for r, p in zip(rows, predicted) if p != r["labels"]]
    return result


def score_reports(generated: list[str], reference: list[str], uncertain: str = "positive") -> dict:
    """Label F1 (:func:`.scores.label_f1`), BLEU-4 and ROUGE-L of paired generated and reference reports."""
    gen_labels, ref_labels = label_many(generated), label_many(reference)
    return {"n": len(generated), "bleu4": bleu4(generated, reference), "rouge_l": rouge_l(generated, reference),
            "chexpert": label_f1(gen_labels, ref_labels, uncertain), "generated_labels": gen_labels,
            "reference_labels": ref_labels}


__all__ = ["FIVE", "LABELS", "agreement", "bleu4", "check_labeler", "fixture_rows", "label", "label_f1",
           "label_many", "mentions", "rouge_l", "score_reports"]
