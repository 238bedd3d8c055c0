"""Medical VQA tasks (VQA-RAD, SLAKE, PathVQA): rows to items, items through the assistant, answers scored.

Rows, as published:

- VQA-RAD and PathVQA (``flaviagiammarino/*``): ``image`` (an ``Image`` struct), ``question``,
  ``answer``. Neither says whether a question is closed; a yes/no answer marks it closed
  (:func:`~multimodal.bench.scoring.is_closed_answer`). A row that has ``answer_type`` keeps it.
- SLAKE (``BoKelvin/SLAKE``): ``img_name`` (inside ``imgs.zip``), ``question``, ``answer``,
  ``q_lang``, ``answer_type`` (OPEN/CLOSED), ``modality``, ``location`` (organ / region),
  ``content_type``; English rows only, as lmms-eval's ``slake_en`` and LLaVA-Med.

Each question is asked as lmms-eval asks it ("...\\nAnswer the question using a single
word or phrase.") through :meth:`Assistant.respond <multimodal.pipeline.Assistant.respond>`,
greedy, 32 new tokens (lmms-eval's ``generation_kwargs``), the image attached as a user
would attach it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..errors import DataLayoutError, InputError
from . import TaskSpec
from .loaders import Loaded, image_bytes
from .scoring import closed_hit, exact_match, is_closed_answer, open_recall

PROMPT_SUFFIX = "\nAnswer the question using a single word or phrase."
MAX_NEW_TOKENS = 32
SLAKE_FIELDS = ("modality", "location", "content_type")


@dataclass
class VqaItem:
    """One question about one image."""

    id: str
    question: str
    answer: str
    answer_type: str
    """``open`` or ``closed``."""
    image: Callable[[], object]
    """Returns what :func:`multimodal.io.load_image` takes (bytes or a PIL image)."""
    fields: dict = field(default_factory=dict)
    """Subgroup values (SLAKE: modality, location, content type)."""


def vqa_items(spec: TaskSpec, loaded: Loaded) -> list[VqaItem]:
    """The task's items from its rows (SLAKE: English rows only)."""
    if spec.name == "slake":
        return _slake(spec, loaded)
    _need(spec, loaded.rows, ("image", "question", "answer"))
    items = []
    for i, row in enumerate(loaded.rows):
        answer = str(row["answer"])
        kind = _answer_type(spec, row.get("answer_type")) if row.get("answer_type") else (
            "closed" if is_closed_answer(answer) else "open")
        items.append(VqaItem(str(row.get("id", i)), str(row["question"]), answer, kind,
                             (lambda value=row["image"]: image_bytes(value, spec.name))))
    return items


def _slake(spec: TaskSpec, loaded: Loaded) -> list[VqaItem]:
    _need(spec, loaded.rows, ("img_name", "question", "answer", "q_lang", "answer_type"))
    if loaded.image is None:
        raise DataLayoutError("SLAKE's rows name images in imgs.zip, and no image archive was found.")
    items = []
    for i, row in enumerate(loaded.rows):
        if str(row["q_lang"]).strip().lower() != "en":
            continue
        items.append(VqaItem(str(row.get("qid", i)), str(row["question"]), str(row["answer"]),
                             _answer_type(spec, row["answer_type"]),
                             (lambda name=str(row["img_name"]): loaded.image(name)),
                             {k: row.get(k) for k in SLAKE_FIELDS}))
    return items


def _answer_type(spec: TaskSpec, value) -> str:
    kind = str(value).strip().lower()
    if kind not in ("open", "closed"):
        raise DataLayoutError(f"An answer_type of {spec.name} is neither OPEN nor CLOSED.")
    return kind


def _need(spec: TaskSpec, rows: list[dict], columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if rows and c not in rows[0]]
    if missing:
        raise DataLayoutError(f"The {spec.name} rows lack the column(s) {', '.join(missing)} of {spec.hub}.")


def answer_items(assistant, items: list[VqaItem], *, max_new_tokens: int = MAX_NEW_TOKENS, guard: bool = False,
                 on_item: Callable[[dict], None] | None = None) -> list[dict]:
    """Ask every item through ``assistant`` and score the answers: one record per item.

    ``guard`` scores the answer held to its evidence (:meth:`Assistant.respond`'s second try)
    instead of the first one.
    """
    from ..io import load_image

    records = []
    for n, item in enumerate(items, 1):
        try:
            image = load_image(item.image())
        except InputError as exc:
            raise DataLayoutError(f"The image of item {n} cannot be read: {exc}") from exc
        done = assistant.respond(item.question + PROMPT_SUFFIX, images=[image], guard=guard,
                                 max_new_tokens=max_new_tokens, temperature=0.0)
        prediction = done.answer.text
        record = {"id": item.id, "question": item.question, "answer": item.answer, "prediction": prediction,
                  "answer_type": item.answer_type, **item.fields,
                  "exact_match": exact_match(prediction, item.answer),
                  "closed_hit": closed_hit(prediction, item.answer) if item.answer_type == "closed" else None,
                  "open_recall": open_recall(prediction, item.answer) if item.answer_type == "open" else None}
        records.append(record)
        if on_item is not None:
            on_item(record)
    return records
