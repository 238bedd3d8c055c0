"""Learned report metrics as plug-ins: RadGraph-F1, CheXbert label F1, GREEN — where their weights are present.

Their weights come from a model hub, which MedAny's machines (and CI) cannot reach,
so none runs by default. Each plug-in says whether it can run here
(:func:`status`) and raises :class:`~multimodal.errors.MetricUnavailableError`
with a code when it cannot: ``not_installed`` (its package), ``weights_absent``
(no weights on this machine), ``needs_gpu``. Where they are present, it computes,
offline (``HF_HUB_OFFLINE=1`` while it runs: nothing is downloaded).

- ``radgraph``: the ``radgraph`` package (PyPI) and its RadGraph-XL model, as that
  package stores it (``MEDANY_RADGRAPH_DIR`` or its own cache folder, holding
  ``radgraph-xl/weights.th``). Reports RadGraph-F1 simple / partial / complete
  (Delbrouck et al., 2024). Runs on the CPU, where the package loads with
  ``weights_only=True``.
- ``chexbert``: our loader (:mod:`.chexbert`) of the CheXbert checkpoint
  (``MEDANY_CHEXBERT`` = the ``chexbert.pth`` file) and a BERT-base-uncased folder
  (``MEDANY_CHEXBERT_BERT``; or both from a Hugging Face cache that already holds
  them). Reports the same label F1 as the rule labeler, on CheXbert's labels.
- ``green``: the ``green_score`` package (GitHub Stanford-AIMI/GREEN) and a GREEN
  model folder (``MEDANY_GREEN_MODEL``, or the hub cache of
  ``StanfordAIMI/GREEN-radllama2-7b``); a 7B model in fp16: CUDA only. Loaded
  without ``trust_remote_code``.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import MetricUnavailableError


@dataclass(frozen=True)
class Plugin:
    name: str
    summary: str
    package: str
    """The module that must be importable."""
    install: str
    locate: Callable[[], dict | None]
    """The weights' locations (``{"checkpoint": ..., ...}``), or None when they are not on this machine."""
    compute: Callable[[dict, list[str], list[str]], dict]
    needs_gpu: bool = False


def _hub_cached(repo: str, filename: str) -> str | None:
    """A file already in the local Hugging Face cache (never downloads)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo, filename)
    return found if isinstance(found, str) and os.path.isfile(found) else None


@contextmanager
def _offline():
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- RadGraph ------------------------------------------------------------------------------

RADGRAPH_MODEL = "radgraph-xl"


def _radgraph_locate() -> dict | None:
    base = os.environ.get("MEDANY_RADGRAPH_DIR")
    if not base:
        from importlib.metadata import version

        from appdirs import user_cache_dir  # a dependency of radgraph

        base = os.path.join(user_cache_dir("radgraph"), version("radgraph"))
    weights = Path(base) / RADGRAPH_MODEL / "weights.th"
    return {"model_cache_dir": str(base)} if weights.is_file() else None


def _radgraph_compute(where: dict, generated: list[str], reference: list[str]) -> dict:
    from radgraph import F1RadGraph

    scorer = F1RadGraph(reward_level="all", model_type=RADGRAPH_MODEL, model_cache_dir=where["model_cache_dir"],
                        cuda=-1)
    (simple, partial, complete), *_ = scorer(refs=reference, hyps=generated)
    return {"radgraph_simple": float(simple), "radgraph_partial": float(partial),
            "radgraph_complete": float(complete)}


# -- CheXbert ------------------------------------------------------------------------------

def _chexbert_locate() -> dict | None:
    checkpoint = os.environ.get("MEDANY_CHEXBERT") or _hub_cached("StanfordAIMI/RRG_scorers", "chexbert.pth")
    bert = os.environ.get("MEDANY_CHEXBERT_BERT")
    if not bert:
        config = _hub_cached("bert-base-uncased", "config.json")
        bert = os.path.dirname(config) if config and _hub_cached("bert-base-uncased", "vocab.txt") else None
    if not (checkpoint and os.path.isfile(checkpoint) and bert and os.path.isfile(os.path.join(bert, "config.json"))):
        return None
    return {"checkpoint": checkpoint, "bert_dir": bert}


def _chexbert_compute(where: dict, generated: list[str], reference: list[str]) -> dict:
    from .chexbert import CheXbertLabeler
    from .scores import label_f1

    labeler = CheXbertLabeler(where["checkpoint"], where["bert_dir"])
    gen, ref = labeler(generated), labeler(reference)
    return {"chexbert": {mode: label_f1(gen, ref, mode) for mode in ("positive", "negative")},
            "chexbert_generated_labels": gen, "chexbert_reference_labels": ref}


# -- GREEN ---------------------------------------------------------------------------------

GREEN_MODEL = "StanfordAIMI/GREEN-radllama2-7b"
# GREEN's conversation format (its models were fine-tuned on it): <|user|> turns, then <|assistant|>.
GREEN_TEMPLATE = ("{% for m in messages %}{% if m['from'] == 'human' %}{{ '<|user|>\n' + m['value'] + eos_token }}"
                  "{% elif m['from'] == 'gpt' %}{{ '<|assistant|>\n' + m['value'] + eos_token }}{% endif %}"
                  "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}{% endfor %}")


def _green_locate() -> dict | None:
    model = os.environ.get("MEDANY_GREEN_MODEL")
    if not model:
        config = _hub_cached(GREEN_MODEL, "config.json")
        model = os.path.dirname(config) if config else None
    return {"model_dir": model} if model and os.path.isfile(os.path.join(model, "config.json")) else None


def _green_compute(where: dict, generated: list[str], reference: list[str]) -> dict:
    import torch
    from green_score.green import Inferer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(where["model_dir"], torch_dtype=torch.float16,
                                                 device_map={"": "cuda:0"})
    tokenizer = AutoTokenizer.from_pretrained(where["model_dir"], add_eos_token=True, padding_side="left")
    tokenizer.chat_template = GREEN_TEMPLATE
    tokenizer.pad_token = tokenizer.eos_token
    with tempfile.TemporaryDirectory() as tmp:
        inferer = Inferer(dataset=[list(reference), list(generated)], model=model, tokenizer=tokenizer,
                          model_name="green", output_dir=tmp, batch_size=8)
        inferer.infer()
    scores = [s for s in inferer.green_scores if s is not None]
    return {"green": sum(scores) / len(scores) if scores else None, "green_parsed": len(scores)}


PLUGINS: dict[str, Plugin] = {
    "radgraph": Plugin("radgraph", "RadGraph-F1 (simple, partial, complete) with RadGraph-XL", "radgraph",
                       "pip install radgraph", _radgraph_locate, _radgraph_compute),
    "chexbert": Plugin("chexbert", "label F1 on CheXbert's labels (the F1CheXbert of report-generation papers)",
                       "transformers", "pip install 'medany[all]'", _chexbert_locate, _chexbert_compute),
    "green": Plugin("green", "GREEN score (clinically significant errors counted by a fine-tuned LLM)", "green_score",
                    "pip install git+https://github.com/Stanford-AIMI/GREEN", _green_locate, _green_compute,
                    needs_gpu=True),
}


def get(name: str) -> Plugin:
    if name not in PLUGINS:
        raise MetricUnavailableError(name, f"no such metric plug-in; there are {', '.join(PLUGINS)}.",
                                     code="unknown")
    return PLUGINS[name]


def ready(name: str) -> dict:
    """The weights' locations of plug-in ``name``, or :class:`MetricUnavailableError` saying why it cannot run."""
    plugin = get(name)
    if importlib.util.find_spec(plugin.package) is None:
        raise MetricUnavailableError(name, f"not installed: needs the Python package '{plugin.package}' "
                                           f"({plugin.install}).", code="not_installed")
    if plugin.needs_gpu:
        import torch

        if not torch.cuda.is_available():
            raise MetricUnavailableError(name, "needs a CUDA GPU.", code="needs_gpu")
    where = plugin.locate()
    if where is None:
        raise MetricUnavailableError(name, "weights absent: they download from a model hub, so they are not on "
                                           "this machine (docs/report-metrics.md says where to put them).",
                                     code="weights_absent")
    return where


def status(name: str) -> str:
    """``"ready"``, or the reason plug-in ``name`` cannot run here."""
    try:
        ready(name)
    except MetricUnavailableError as exc:
        return f"{exc.code}: {exc}"
    return "ready"


def compute(name: str, generated: list[str], reference: list[str]) -> dict:
    """Run plug-in ``name`` on paired reports (offline); :class:`MetricUnavailableError` when it cannot."""
    where = ready(name)
    try:
        with _offline():
            return get(name).compute(where, list(generated), list(reference))
    except MetricUnavailableError:
        raise
    except Exception as exc:  # a third-party model failing to load or run: say which, keep the traceback chained
        raise MetricUnavailableError(name, f"failed while computing ({type(exc).__name__}): {exc}"[:500],
                                     code="failed") from exc
