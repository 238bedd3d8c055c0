"""``medany bench TASK``: load a benchmark's split, score the stack on it, print the scores, write the JSON.

    medany bench --list
    medany bench slake --data ~/data/SLAKE --out slake.json
    medany bench mmlu_medical --hub --backend transformers
    medany bench vqa_rad --fixture --llm embedded-small

The results file holds the task and its reference, where the data came from, the
settings, ``metrics`` over all items, ``groups`` (per answer type, modality, organ,
subject ...) and every item's record (prediction or choice log-likelihoods, and its
scores), so a score can be checked item by item.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from ..config import StackConfig
from ..errors import DataLayoutError, MissingDataError
from . import TaskSpec, get_task, list_tasks
from .loaders import Loaded, hub_rows, local_rows

PROGRESS_EVERY = 50


def load_split(spec: TaskSpec, *, data: str | Path = "", hub: bool = False,
               split: str = "") -> list[tuple[str, Loaded]]:
    """``[(config, rows)]`` of ``spec``'s split, from the folder ``data`` or (``hub``) through ``datasets``."""
    split = split or spec.split
    if hub:
        return [(c, hub_rows(spec.hub, split, c or None, spec.images, spec.name)) for c in spec.configs]
    return [(c, local_rows(data, spec.files, split, c, spec.images, spec.name)) for c in spec.configs]


def run_task(spec: TaskSpec, parts: list[tuple[str, Loaded]], *, assistant=None, backend=None, tokenizer=None,
             split: str = "", limit: int = 0, guard: bool = False, answer_tokens: int = 32,
             progress=None) -> dict:
    """Score one task on loaded rows: VQA through ``assistant``, multiple choice on ``backend`` + ``tokenizer``.

    ``limit`` keeps the first items (per config: per MMLU subject). Returns the results
    (see the module docstring).
    """
    from .scoring import choice_metrics, summarize, vqa_metrics

    t0 = time.perf_counter()
    if spec.family == "vqa":
        from .vqa import PROMPT_SUFFIX, answer_items, vqa_items

        items = [item for _, loaded in parts for item in vqa_items(spec, loaded)][:limit or None]
        _some(spec, items)
        records = answer_items(assistant, items, max_new_tokens=answer_tokens, guard=guard,
                               on_item=_counter(len(items), progress))
        summary = summarize(records, vqa_metrics, spec.groups)
        settings = {"prompt_suffix": PROMPT_SUFFIX, "max_new_tokens": answer_tokens, "temperature": 0.0,
                    "guard": guard}
    else:
        from .choice import DELIMITER, choice_items, score_items

        items = [item for config, loaded in parts for item in choice_items(spec, config, loaded)[:limit or None]]
        _some(spec, items)
        records = score_items(backend, tokenizer, items, on_item=_counter(len(items), progress))
        summary = summarize(records, choice_metrics, spec.groups)
        settings = {"num_fewshot": 0, "target_delimiter": DELIMITER, "output_type": "multiple_choice"}
    return {"task": spec.name, "title": spec.title, "reference": spec.reference, "hub": spec.hub,
            "split": split or spec.split, "data": {"source": parts[0][1].source,
                                                   "files": [f for _, loaded in parts for f in loaded.files]},
            "settings": settings, **summary, "seconds": round(time.perf_counter() - t0, 3), "items": records}


def _some(spec: TaskSpec, items: list) -> None:
    if not items:
        raise DataLayoutError(f"The {spec.name} data holds no items to score"
                              f"{' in English' if spec.name == 'slake' else ''}.")


def _counter(total: int, progress):
    seen = [0]

    def on_item(record: dict) -> None:
        seen[0] += 1
        if progress is not None and (seen[0] % PROGRESS_EVERY == 0 or seen[0] == total):
            progress(f"[{seen[0]}/{total}]")

    return on_item


def bench(task: str = "", list: bool = False, data: str = "", hub: bool = False, fixture: bool = False,
          split: str = "", limit: int = 0, out: str = "", guard: bool = False, answer_tokens: int = 32,
          config: StackConfig | None = None, stdout=None) -> int:
    """Score the stack on a medical benchmark: VQA-RAD, SLAKE, PathVQA, MedQA, PubMedQA, medical MMLU.

    Args:
        task: the benchmark (--list names them all)
        list: name every task, its data set and its scoring, then exit
        data: a folder holding the data set's files as its hub repository publishes them
        hub: load the data set from the Hugging Face hub with datasets instead (needs internet)
        fixture: run on the task's bundled hand-written fixture (checks the harness, not the model)
        split: the split to score (default: the one the reference harness scores)
        limit: score only the first this many items (per subject for mmlu_medical)
        out: write the results (scores, breakdowns and every item) as JSON to this file
        guard: VQA: score the answer held to its evidence (answered again when the first contradicts it)
        answer_tokens: VQA: most new tokens of an answer (lmms-eval: 32)
    """
    stdout = stdout or sys.stdout
    if list:
        for spec in list_tasks():
            print(f"{spec.name:28} {spec.family:6} {spec.title} [{spec.hub}, {spec.split}]", file=stdout)
        return 0
    spec = get_task(task)
    if sum((bool(data), hub, fixture)) != 1:
        raise MissingDataError("Name one data source: --data DIR (the data set's published files), --hub "
                               "(download with datasets) or --fixture (the bundled hand-written items).")
    config = config or StackConfig()
    with tempfile.TemporaryDirectory(prefix="medany-bench-") as scratch:
        if fixture:
            from .fixtures import write_fixture

            data = str(write_fixture(spec, scratch))
        parts = load_split(spec, data=data, hub=hub, split=split)
        results = _run(spec, parts, config, split=split, limit=limit, guard=guard, answer_tokens=answer_tokens)
    results["data"]["fixture"] = fixture
    if out:
        Path(out).write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    stdout.write(format_summary(results))
    if out:
        print(f"[wrote the results and {len(results['items'])} item records to {out}]", file=sys.stderr)
    return 0


def _run(spec: TaskSpec, parts, config: StackConfig, **kw) -> dict:
    """Load what the task needs (the whole assistant for VQA, the LLM alone for multiple choice) and run it."""
    def progress(line: str) -> None:
        print(line, file=sys.stderr)

    if spec.family == "vqa":
        from ..pipeline import Assistant

        assistant = Assistant.load(config)
        results = run_task(spec, parts, assistant=assistant, progress=progress, **kw)
        backend = assistant.backend
    else:
        from ..stack import StackSpec, build_stack

        stack = build_stack(StackSpec(llm=config.llm, backend=config.backend, dtype=config.dtype,
                                      device=config.device, threads=config.threads, context=config.context))
        backend = stack.backend
        results = run_task(spec, parts, backend=backend, tokenizer=stack.tokenizer, progress=progress, **kw)
    results["stack"] = {"llm": config.llm, "backend": backend.describe()}
    return results


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _line(metrics: dict) -> str:
    if "acc" in metrics:
        return f"n {metrics['n']}  acc {_pct(metrics['acc'])}  acc_norm {_pct(metrics['acc_norm'])}"
    return (f"n {metrics['n']}  exact match {_pct(metrics['exact_match'])}  closed accuracy "
            f"{_pct(metrics['closed_accuracy'])} ({metrics['closed_n']})  open recall {_pct(metrics['open_recall'])}"
            f" ({metrics['open_n']})")


def format_summary(results: dict) -> str:
    """The scores as a few lines of text: all items, then each subgroup."""
    source = "fixture (hand-written items, not the data set)" if results["data"].get("fixture") else \
        results["data"]["source"]
    lines = [f"{results['task']}: {results['title']}, split {results['split']}, data {source}",
             f"  {'all':36} {_line(results['metrics'])}"]
    for field, values in results["groups"].items():
        for value, metrics in values.items():
            lines.append(f"  {(field + ' ' + value)[:36]:36} {_line(metrics)}")
    lines.append(f"  scored as {results['reference']}")
    return "\n".join(lines) + "\n"
