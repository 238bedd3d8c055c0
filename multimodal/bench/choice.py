"""Multiple-choice tasks (MedQA, PubMedQA, MMLU) scored by log-likelihood, as lm-evaluation-harness scores them.

Prompts are lm-eval's ``doc_to_text`` (zero-shot), each choice scored as the continuation
``" " + choice`` (its ``target_delimiter``):

- ``medqa_4options``: ``Question: {question}\\nA. {A}\\nB. {B}\\nC. {C}\\nD. {D}\\nAnswer:``;
  choices ``A``-``D``. Rows as ``GBaker/MedQA-USMLE-4-options`` publishes them (``question``,
  ``options`` {A..D}, ``answer_idx``, ``meta_info``) or as its ``-hf`` twin that lm-eval
  reads (``sent1``, ``ending0``-``ending3``, ``label``).
- ``pubmedqa``: ``Abstract: {contexts joined by newlines}\\nQuestion: {question}\\nAnswer:``;
  choices ``yes`` / ``no`` / ``maybe``; gold ``final_decision``.
- ``mmlu_*``: the description ``The following are multiple choice questions (with answers)
  about {subject}.\\n\\n`` then ``{question}\\nA. ..\\nD. {choice}\\nAnswer:``; choices ``A``-``D``;
  gold ``answer`` (0-3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..errors import DataLayoutError
from . import TaskSpec
from .likelihood import choice_loglikelihoods
from .loaders import Loaded
from .scoring import choice_scores

LETTERS = ("A", "B", "C", "D")
PUBMEDQA_CHOICES = ("yes", "no", "maybe")
DELIMITER = " "


@dataclass
class ChoiceItem:
    """One question: the context the choices continue, the choice strings, the gold index."""

    id: str
    context: str
    choices: tuple[str, ...]
    gold: int
    fields: dict = field(default_factory=dict)


def choice_items(spec: TaskSpec, config: str, loaded: Loaded) -> list[ChoiceItem]:
    """The task's items from one config's rows."""
    build = {"medqa_4options": _medqa, "pubmedqa": _pubmedqa}.get(spec.name, _mmlu)
    items = []
    for i, row in enumerate(loaded.rows):
        try:
            items.append(build(row, i, config))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DataLayoutError(f"Row {i} of {spec.name} does not have the layout of {spec.hub} "
                                  f"({type(exc).__name__}: {exc}).") from exc
    return items


def _letters_prompt(question: str, options: list[str]) -> str:
    return question + "\n" + "".join(f"{k}. {v}\n" for k, v in zip(LETTERS, options)) + "Answer:"


def _medqa(row: dict, i: int, config: str) -> ChoiceItem:
    if "options" in row:
        options = row["options"]
        if isinstance(options, list):  # parquet may store the {A: .., D: ..} map as key/value pairs
            options = {o["key"]: o["value"] for o in options}
        texts, gold = [str(options[k]) for k in LETTERS], LETTERS.index(str(row["answer_idx"]).strip())
        question = row["question"]
    else:
        texts, gold, question = [str(row[f"ending{k}"]) for k in range(4)], int(row["label"]), row["sent1"]
    context = f"Question: {_letters_prompt(question, texts)}"
    return ChoiceItem(str(row.get("id", i)), context, LETTERS, gold, {"meta_info": row.get("meta_info")})


def _pubmedqa(row: dict, i: int, config: str) -> ChoiceItem:
    contexts = "\n".join(row["context"]["contexts"])
    decision = str(row["final_decision"]).strip().lower()
    context = f"Abstract: {contexts}\nQuestion: {row['question']}\nAnswer:"
    return ChoiceItem(str(row.get("pubid", i)), context, PUBMEDQA_CHOICES, PUBMEDQA_CHOICES.index(decision),
                      {"final_decision": decision})


def _mmlu(row: dict, i: int, config: str) -> ChoiceItem:
    subject = config or str(row["subject"])
    choices = [str(c) for c in row["choices"]]
    if len(choices) != 4:
        raise ValueError(f"{len(choices)} choices instead of 4")
    answer = row["answer"]
    gold = LETTERS.index(answer) if isinstance(answer, str) else int(answer)
    description = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
    return ChoiceItem(f"{subject}-{i}", description + _letters_prompt(str(row["question"]).strip(), choices),
                      LETTERS, gold, {"subject": subject})


def score_items(backend, tokenizer, items: list[ChoiceItem],
                on_item: Callable[[dict], None] | None = None) -> list[dict]:
    """Each item's choice log-likelihoods on ``backend`` and lm-eval's ``acc`` / ``acc_norm``: one record per item."""
    records = []
    for item in items:
        lls = choice_loglikelihoods(backend, tokenizer, item.context, [DELIMITER + c for c in item.choices])
        record = {"id": item.id, **item.fields, "gold": item.gold, "choices": list(item.choices),
                  "loglikelihoods": lls, **choice_scores(lls, item.choices, item.gold)}
        records.append(record)
        if on_item is not None:
            on_item(record)
    return records
