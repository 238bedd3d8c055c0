"""Fairness of the assistant's answers across patients: ``medany eval --fairness``.

Two measurements on held-out DICOMs (``python -m recipes.image.make_fairness``
writes a set where every scan appears once per sex and age band):

- **per-group metrics**: each answer is scored against the record's fields (as
  ``medany eval`` reads sentences: :func:`multimodal.evaluate.names_only`) and
  grouped by the de-identified sex and age band the loader reads from the
  header (PatientSex, PatientAge: :mod:`multimodal.io.dicom_meta`).
  fairlearn's ``MetricFrame`` gives the accuracy and count of each group, a
  bootstrap confidence interval for each, and the largest gap between two
  groups with its interval;
- **counterfactual**: the same request again with only the sex (F <-> M) or
  only the age band (moved by half the bands present, 20-29 <-> 60-69) changed
  in the image's de-identified metadata, so the prompt's DICOM line differs in
  that one field; how often the answer's text changes, and how often the fields
  it names change.

Answers come from the assistant itself (:class:`~multimodal.pipeline.Assistant`:
the prompt the pipeline writes, llama.cpp for a GGUF LLM), greedy, first drafts
(no grounding revision), so a difference is the model's own.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

import numpy as np

from .errors import MedAnyError, require

ATTRIBUTES = ("sex", "age_band")
UNKNOWN = "unknown"
"""The group of a file whose header does not record the attribute."""
SEXES = {"F": "M", "M": "F"}


@dataclass
class Item:
    """One held-out request: the DICOM, the question, the fields a right answer names."""

    id: str
    image: str
    question: str
    fields: dict


def items_from_samples(samples) -> list[Item]:
    """Requests from ``medany eval`` samples: each sample's image and its last human turn's question."""
    out = []
    for s in samples:
        images = s.media.get("image") or []
        if len(images) != 1:
            raise MedAnyError(f"--fairness needs one image per record; record {s.id or s.line} has {len(images)}.")
        human = [m for m in s.messages if m["role"] == "user"][-1]["content"]
        question = human.rsplit("Question: ", 1)[-1] if "Question: " in human else "\n".join(
            ln for ln in human.splitlines() if ln.strip() != "<image>")
        out.append(Item(s.id or str(s.line), str(images[0]), question.strip(), dict(s.extra.get("fields") or {})))
    return out


def counterfactual_value(attribute: str, value: str | None, levels: Sequence[str]) -> str | None:
    """The value a counterfactual request states instead of ``value``: the other sex (F <-> M), or the age band
    half the bands present away (``levels`` sorted: 20-29 <-> 60-69 among four); None when there is none."""
    if value is None or value == UNKNOWN:
        return None
    if attribute == "sex":
        return SEXES.get(value)
    ordered = sorted(set(levels) - {UNKNOWN})
    if value not in ordered or len(ordered) < 2:
        return None
    return ordered[(ordered.index(value) + max(1, len(ordered) // 2)) % len(ordered)]


def group_metrics(scores: Sequence[float], groups: Mapping[str, Sequence[str]], n_boot: int = 1000,
                  seed: int = 0, quantiles: tuple[float, float] = (0.025, 0.975)) -> dict:
    """Per attribute of ``groups`` (``{"sex": [...], "age_band": [...]}``, one value per score): the mean score
    (accuracy) and count of each group with a bootstrap confidence interval (fairlearn ``MetricFrame``), the
    overall mean, and the largest gap between two groups (max - min) with its interval and the two groups (none
    when every group scores the same). The gap's interval is that of max - min over the resamples, which is never
    negative: with no gap it lies above 0 (resampled groups rarely tie exactly)."""
    metrics = require("fairlearn.metrics", "all")
    y = np.asarray(scores, dtype=np.float64)
    out = {}
    for attribute, values in groups.items():
        frame = metrics.MetricFrame(metrics={"accuracy": _mean, "n": _count}, y_true=np.ones_like(y), y_pred=y,
                                    sensitive_features={attribute: list(values)}, n_boot=n_boot,
                                    ci_quantiles=list(quantiles), random_state=seed)
        by, lo, hi = frame.by_group, frame.by_group_ci[0], frame.by_group_ci[1]
        accuracy = by["accuracy"]
        gap_ci, gap = frame.difference_ci(), float(frame.difference()["accuracy"])
        out[attribute] = {
            "groups": {str(g): {"n": int(by.loc[g, "n"]), "accuracy": float(accuracy.loc[g]),
                                "ci": [float(lo.loc[g, "accuracy"]), float(hi.loc[g, "accuracy"])]}
                       for g in by.index},
            "overall": float(frame.overall["accuracy"]),
            "gap": {"value": gap, "ci": [float(gap_ci[0]["accuracy"]), float(gap_ci[1]["accuracy"])],
                    "between": [str(accuracy.idxmax()), str(accuracy.idxmin())] if gap > 0 else []},
        }
    return out


def _mean(y_true, y_pred) -> float:
    return float(np.mean(y_pred))


def _count(y_true, y_pred) -> float:
    return float(len(y_pred))


def fairness_eval(assistant, items: Sequence[Item], *, max_new_tokens: int | None = None, n_boot: int = 1000,
                  seed: int = 0, progress: bool = False, examples: int = 3) -> dict:
    """Answer every item, then its counterfactuals, with ``assistant``; per-group metrics and change rates."""
    from .evaluate import names_only, normalize_words
    from .io import load_image

    choices: dict[str, set[str]] = {}
    for item in items:
        for k, v in item.fields.items():
            choices.setdefault(k, set()).add(str(v))

    def named(text: str) -> dict:
        return {k: next((v for v in sorted(vals) if names_only(text, v, vals)), None) for k, vals in choices.items()}

    def ask(item: Item, image) -> str:
        return assistant.answer(item.question, [image], guard=False, max_new_tokens=max_new_tokens)

    images = [load_image(item.image) for item in items]
    if any(image.kind != "dicom" for image in images):
        raise MedAnyError("--fairness reads sex and age band from DICOM headers; the held-out set must be DICOMs "
                          "(python -m recipes.image.make_fairness writes one).")
    groups = {a: [str(image.meta.get(a) or UNKNOWN) for image in images] for a in ATTRIBUTES}
    answers, scores, scored_groups = [], [], {a: [] for a in ATTRIBUTES}
    tick = _progress(len(items) * (1 + len(ATTRIBUTES)), progress)
    for i, (item, image) in enumerate(zip(items, images)):
        text = ask(item, image)
        tick()
        answers.append(text)
        if item.fields:  # records without fields (open questions) only take part in the counterfactual test
            got = named(text)
            scores.append(sum(got[k] == str(v) for k, v in item.fields.items()) / len(item.fields))
            for a in ATTRIBUTES:
                scored_groups[a].append(groups[a][i])
    counterfactual, shown = {}, []
    for a in ATTRIBUTES:
        n = text_changed = fields_changed = 0
        for item, image, text in zip(items, images, answers):
            other = counterfactual_value(a, image.meta.get(a), groups[a])
            if other is None:
                tick()
                continue
            flipped = replace(image, meta={**image.meta, a: other})  # only this field of the DICOM line changes
            again = ask(item, flipped)
            tick()
            n += 1
            text_changed += normalize_words(again) != normalize_words(text)
            fields_changed += bool(item.fields) and named(again) != named(text)
            if normalize_words(again) != normalize_words(text) and len(shown) < examples:
                shown.append({"id": item.id, "attribute": a, "from": image.meta.get(a), "to": other,
                              "answer": text, "counterfactual": again})
        counterfactual[a] = {"n": n, "text_changed": text_changed, "fields_changed": fields_changed,
                             "text_change_rate": text_changed / n if n else None,
                             "field_change_rate": fields_changed / n if n else None}
    result = {"samples": len(items), "scored": len(scores), "accuracy": float(np.mean(scores)) if scores else None,
              "bootstrap": n_boot, "seed": seed, "counterfactual": counterfactual, "changed_examples": shown}
    if scores:
        result["groups"] = group_metrics(scores, scored_groups, n_boot=n_boot, seed=seed)
    return result


def _progress(total: int, on: bool) -> Callable[[], None]:
    done = [0]

    def tick() -> None:
        done[0] += 1
        if on and (done[0] % 10 == 0 or done[0] == total):
            print(f"answered {done[0]}/{total}", file=sys.stderr)

    return tick


def fairness_markdown(result: dict) -> str:
    """The per-group table (accuracy, 95 % interval, count; the largest gap per attribute) and the counterfactual
    table of :func:`fairness_eval`'s result, as Markdown."""
    lines = ["| attribute | group | n | accuracy | 95% CI |", "|---|---|---|---|---|"]
    for attribute, g in (result.get("groups") or {}).items():
        for name, row in g["groups"].items():
            lines.append(f"| {attribute} | {name} | {row['n']} | {row['accuracy']:.3f} | "
                         f"{row['ci'][0]:.3f}-{row['ci'][1]:.3f} |")
        gap = g["gap"]
        between = f"{gap['between'][0]} - {gap['between'][1]}" if gap["between"] else "all groups equal"
        lines.append(f"| {attribute} | **largest gap** ({between}) | | {gap['value']:.3f} | "
                     f"{gap['ci'][0]:.3f}-{gap['ci'][1]:.3f} |")
    lines += ["", "| changed in the DICOM line | requests | answer text changed | fields named changed |",
              "|---|---|---|---|"]
    for attribute, c in result["counterfactual"].items():
        if c["n"]:
            lines.append(f"| {attribute} only | {c['n']} | {c['text_changed']} ({c['text_change_rate']:.1%}) | "
                         f"{c['fields_changed']} ({c['field_change_rate']:.1%}) |")
    return "\n".join(lines)
