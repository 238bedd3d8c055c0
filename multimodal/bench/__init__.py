"""``medany bench``: medical benchmarks scored the way their reference harnesses score them.

Two families:

- ``vqa`` (:mod:`.vqa`): VQA-RAD, SLAKE (English), PathVQA. Each image and question goes
  through :class:`~multimodal.pipeline.Assistant` as a user's would (greedy, 32 new
  tokens, "Answer the question using a single word or phrase." as lmms-eval asks);
  answers are scored by :mod:`.scoring` (lmms-eval's normalised exact match, LLaVA-Med's
  closed accuracy and open recall), overall, per answer type and per modality / organ /
  content type where the data set has them.
- ``choice`` (:mod:`.choice`): MedQA (4 options), PubMedQA (pqa_labeled) and the medical
  MMLU subjects, scored by log-likelihood as lm-evaluation-harness does (zero-shot, its
  prompts, ``acc`` and ``acc_norm``) on the stack's backend (:mod:`.likelihood`).

:data:`TASKS` maps each name to its :class:`TaskSpec`; :func:`get_task` refuses an
unknown one with :class:`~multimodal.errors.UnknownTaskError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnknownTaskError


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark: where its data is published, how it is laid out, and how it is scored."""

    name: str
    family: str
    """``vqa`` (generated answers) or ``choice`` (log-likelihood multiple choice)."""
    title: str
    hub: str
    """The Hugging Face data set whose layout the task reads."""
    split: str
    """The split scored by default (the reference harness's test split)."""
    files: tuple[str, ...]
    """Glob patterns of the split's files in a local copy; ``{split}`` and ``{config}`` are filled in."""
    groups: tuple[str, ...]
    """Item fields the results are broken down by."""
    reference: str
    """Which harness's scoring this reproduces."""
    configs: tuple[str, ...] = ("",)
    """Hub configs read (MMLU subjects, PubMedQA's ``pqa_labeled``); several make a group task."""
    images: str = ""
    """An image archive beside the rows (SLAKE's ``imgs.zip``)."""


LLAVA_MED = "LLaVA-Med run_eval_batch.py (closed accuracy, open recall); lmms-eval SLAKE normalised exact match"
LM_EVAL = "lm-evaluation-harness multiple_choice (zero-shot, acc and acc_norm)"
PARQUET = ("data/{split}-*.parquet",)
CONFIG_PARQUET = ("{config}/{split}-*.parquet",)

MMLU_MEDICAL = ("anatomy", "clinical_knowledge", "college_medicine", "medical_genetics", "professional_medicine",
                "college_biology")


def _mmlu(subject: str) -> TaskSpec:
    return TaskSpec(f"mmlu_{subject}", "choice", f"MMLU {subject.replace('_', ' ')}", "cais/mmlu", "test",
                    CONFIG_PARQUET, ("subject",), LM_EVAL, configs=(subject,))


_ALL = [
    TaskSpec("vqa_rad", "vqa", "VQA-RAD (radiology VQA)", "flaviagiammarino/vqa-rad", "test", PARQUET,
             ("answer_type",), LLAVA_MED),
    TaskSpec("slake", "vqa", "SLAKE, English questions (radiology VQA)", "BoKelvin/SLAKE", "test",
             ("{split}.json",), ("answer_type", "modality", "location", "content_type"), LLAVA_MED,
             images="imgs.zip"),
    TaskSpec("pathvqa", "vqa", "PathVQA (pathology VQA)", "flaviagiammarino/path-vqa", "test", PARQUET,
             ("answer_type",), LLAVA_MED),
    TaskSpec("medqa_4options", "choice", "MedQA (USMLE, 4 options)", "GBaker/MedQA-USMLE-4-options", "test",
             ("*{split}*.jsonl", "data/{split}-*.parquet"), ("meta_info",), LM_EVAL),
    TaskSpec("pubmedqa", "choice", "PubMedQA (pqa_labeled)", "qiaojin/PubMedQA", "train", CONFIG_PARQUET,
             ("final_decision",), LM_EVAL, configs=("pqa_labeled",)),
    *[_mmlu(s) for s in MMLU_MEDICAL],
    TaskSpec("mmlu_medical", "choice", "MMLU medical subsets (the six above, pooled)", "cais/mmlu", "test",
             CONFIG_PARQUET, ("subject",), LM_EVAL + "; pooled over items, as its size-weighted groups",
             configs=MMLU_MEDICAL),
]
TASKS: dict[str, TaskSpec] = {t.name: t for t in _ALL}


def get_task(name: str) -> TaskSpec:
    """The task called ``name`` (``-`` and ``_`` alike, any case)."""
    key = name.strip().lower().replace("-", "_")
    if key not in TASKS:
        raise UnknownTaskError(f"There is no benchmark task {name!r}; the tasks are: {', '.join(TASKS)}.")
    return TASKS[key]


def list_tasks() -> list[TaskSpec]:
    return list(TASKS.values())


__all__ = ["MMLU_MEDICAL", "TASKS", "TaskSpec", "get_task", "list_tasks"]
