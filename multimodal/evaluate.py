"""``medany eval``: held-out loss/perplexity and generation metrics for trained projectors.

Teacher-forced loss covers every assistant token. Generation answers the last
human turn of each sample greedily and scores it against fields the dataset
carries beside the conversation:

- ``"transcript"``: word error rate of the transcription, read from a
  ``Transcript:`` line of the reply (or its first line when there is none);
- ``"fields"``: ``{"modality": "CT", "body_part": "HEAD"}``, exact-match accuracy
  of ``Modality: ...`` / ``Body part: ...`` lines in the reply; a reply without
  such a line is right when it names the value and no other value of that field
  in the data ("This is a CT image of the head");
- ``"group"``: metrics are also broken down per group (e.g. held-out voices).

Letters: B batch, L sequence length.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import torch

from .data import ConversationDataset, Sample, collate, load_samples
from .errors import MedAnyError, require
from .media import encoder_token_counts, media_loader
from .metrics_log import ExpertLoad
from .template import IGNORE_INDEX, encode_conversation


def normalize_words(text: str) -> list[str]:
    """Lower-case words without punctuation (the usual WER normalisation)."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def word_edits(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance in words (substitutions + insertions + deletions)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def word_error_rate(refs: list[str], hyps: list[str]) -> float:
    """Corpus WER: total word edits / total reference words."""
    edits = sum(word_edits(normalize_words(r), normalize_words(h)) for r, h in zip(refs, hyps))
    words = sum(len(normalize_words(r)) for r in refs)
    return edits / max(words, 1)


def extract_field(text: str, name: str) -> str | None:
    """Value of a ``Name: value`` line (``body_part`` matches ``Body part:``), else None."""
    label = re.escape(name.replace("_", " "))
    m = re.search(rf"(?im)^\s*{label}\s*:\s*(.+?)\s*$", text)
    return m.group(1) if m else None


def extract_transcript(text: str) -> str:
    found = extract_field(text, "transcript")
    return found if found is not None else (text.strip().splitlines() or [""])[0]


def names_only(text: str, value: str, choices) -> bool:
    """True when ``text`` names ``value`` and none of the other ``choices``, as whole words.

    Codes of up to three letters ("CT", "US") match case-sensitively, so the word
    "us" is not an ultrasound; longer values ("CHEST") match in any case.
    """
    def named(v: str) -> bool:
        flags = 0 if len(v) <= 3 else re.IGNORECASE
        return re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", text, flags) is not None

    return named(value) and not any(named(c) for c in choices if c != value)


def _field_right(text: str, name: str, value: str, choices) -> bool:
    line = extract_field(text, name)
    return _same(line, value) if line is not None else names_only(text, value, choices)


def _same(a: str | None, b: str) -> bool:
    return a is not None and normalize_words(a) == normalize_words(b)


def _prompt(sample: Sample) -> tuple[list[dict], str]:
    """Messages up to the last assistant turn, and that turn's text (the reference)."""
    last = max(i for i, m in enumerate(sample.messages) if m["role"] == "assistant")
    return sample.messages[:last], sample.messages[last]["content"]


@torch.no_grad()
def teacher_forced_loss(model, items: list[dict], batch_size: int = 4, expert_load=None) -> tuple[float, int]:
    """Token-weighted mean cross-entropy over all supervised tokens of dataset ``items``, and the token count.

    ``expert_load`` (a :class:`~multimodal.metrics_log.ExpertLoad`) collects MoE projectors' routing on the way.
    """
    from projectors.moe import collect_routing

    total, tokens = 0.0, 0
    pad = model.tokenizer.pad_token_id
    for start in range(0, len(items), batch_size):
        batch = collate(items[start:start + batch_size], pad)
        labels = batch["labels"]
        n = int((labels[:, 1:] != IGNORE_INDEX).sum())  # HF shifts labels by one
        out = model(input_ids=batch["input_ids"].to(model.device),
                    attention_mask=batch["attention_mask"].to(model.device),
                    labels=labels.to(model.device), media=batch["media"].to(model.device))
        total += float(out.loss) * n
        tokens += n
        routing = collect_routing(model.projectors)
        if routing is not None and expert_load is not None:
            expert_load.add(routing)
    return total / max(tokens, 1), tokens


@torch.no_grad()
def sample_losses(model, items: list[dict], batch_size: int = 4) -> list[float]:
    """Each dataset item's own mean cross-entropy over its supervised tokens (a membership-inference score)."""
    out: list[float] = []
    pad = model.tokenizer.pad_token_id
    for start in range(0, len(items), batch_size):
        batch = collate(items[start:start + batch_size], pad)
        losses = model(input_ids=batch["input_ids"].to(model.device),
                       attention_mask=batch["attention_mask"].to(model.device),
                       labels=batch["labels"].to(model.device), media=batch["media"].to(model.device),
                       per_sample=True).loss  # [B]
        out += [float(v) for v in losses]
    return out


def evaluate(model, samples: list[Sample], media_fn, *, max_samples: int | None = None,
             max_new_tokens: int = 64, generate: bool = True, examples: int = 5) -> dict:
    """Score ``model`` on ``samples``; ``media_fn(kind, path) -> (input, valid)`` as in training.

    Returns ``loss``, ``perplexity``, ``expert_load`` (MoE projectors only: each expert's share of the
    held-out tokens) and, with ``generate``, ``exact_match``,
    ``wer`` (samples with a transcript), ``field_accuracy`` (per named field),
    ``groups`` (the same per ``group``) and a few ``examples``. Each medium is
    decoded once and serves both the loss and the generation.
    """
    samples = samples[:max_samples] if max_samples else samples
    model.eval()
    counts = encoder_token_counts(dict(model.encoders.items()), media_fn, samples)
    ds = ConversationDataset(samples, model.tokenizer, media_fn, model.token_counts, encoder_tokens=counts)
    items = [ds[i] for i in range(len(ds))]
    load = ExpertLoad()
    loss, n_tok = teacher_forced_loss(model, items, expert_load=load)
    result: dict = {"samples": len(samples), "loss": loss, "perplexity": math.exp(min(loss, 50.0)), "tokens": n_tok}
    if load.totals():  # MoE projectors: the share of the held-out tokens each expert took
        result["expert_load"] = load.totals()
    if not generate:
        return result
    rows = []
    pad = model.tokenizer.pad_token_id
    for s, item in zip(samples, items):
        messages, reference = _prompt(s)  # media sit in human/system turns, so the counts still hold
        media = collate([item], pad)["media"].to(model.device)
        enc = encode_conversation(model.tokenizer, messages, item["media_tokens"], add_generation_prompt=True)
        ids = model.generate(enc.input_ids[None].to(model.device), media=media,
                             max_new_tokens=max_new_tokens, do_sample=False)
        text = model.tokenizer.decode(ids[0], skip_special_tokens=True).strip()
        rows.append((s, reference, text))
    result.update(_score(rows))
    groups = sorted({str(s.extra["group"]) for s, _, _ in rows if "group" in s.extra})
    if groups:
        result["groups"] = {g: _score([r for r in rows if str(r[0].extra.get("group")) == g]) for g in groups}
    result["examples"] = [{"id": s.id, "reference": ref, "generated": gen} for s, ref, gen in rows[:examples]]
    return result


def _score(rows) -> dict:
    out: dict = {"n": len(rows), "exact_match": sum(_same(g, r) for _, r, g in rows) / max(len(rows), 1)}
    with_tr = [(s.extra["transcript"], extract_transcript(g)) for s, _, g in rows if "transcript" in s.extra]
    if with_tr:
        out["wer"] = word_error_rate([r for r, _ in with_tr], [h for _, h in with_tr])
    choices: dict[str, set[str]] = {}
    for s, _, _ in rows:
        for name, value in (s.extra.get("fields") or {}).items():
            choices.setdefault(name, set()).add(str(value))
    fields: dict[str, list[bool]] = {}
    for s, _, g in rows:
        for name, value in (s.extra.get("fields") or {}).items():
            fields.setdefault(name, []).append(_field_right(g, name, str(value), choices[name]))
    if fields:
        out["field_accuracy"] = {k: sum(v) / len(v) for k, v in fields.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    """``medany eval CONFIG [--data FILE] [--projector-dir DIR] [--untrained] [--fairness] [--out FILE]``:
    :func:`command`."""
    from .cli_args import run_command

    return run_command(command, argv, prog="medany eval", positional=("config",))


def command(config: str, data: str | None = None, projector_dir: str | None = None, untrained: bool = False,
            max_samples: int | None = None, max_new_tokens: int | None = None, no_generate: bool = False,
            out: str | None = None, fairness: bool = False, image_projector: str | None = None,
            bootstrap: int = 1000) -> int:
    """Evaluate MedAny projectors on held-out data; prints the metrics as JSON.

    With ``--fairness`` the assistant itself answers each held-out DICOM and the
    JSON holds per-group accuracy by de-identified sex and age band and the
    counterfactual change rates (:mod:`multimodal.fairness`); the same as
    Markdown tables goes to standard error.

    Args:
        config: the training config (.json or .yaml) of the run to evaluate
        data: held-out set (default: the config's eval_data)
        projector_dir: folder holding <kind>_projector/ (default: the config's output_dir)
        untrained: score freshly initialised projectors (a baseline)
        max_samples: score at most this many samples
        max_new_tokens: longest generated answer (default: the config's eval_max_new_tokens)
        no_generate: loss and perplexity only
        out: also write the metrics JSON here
        fairness: answer with the assistant (the config's LLM and image encoder; llama.cpp for a GGUF LLM) and
            report accuracy per de-identified sex and age band with bootstrap CIs and the largest gap (fairlearn
            MetricFrame), and how often the answer changes when only the sex or age band of the DICOM line changes
        image_projector: with --fairness, the image projector: auto (the shipped one), none, a shipped name or a
            directory (default: the run's trained one, as without --fairness)
        bootstrap: with --fairness, bootstrap resamples per confidence interval
    """
    from .stack import StackSpec, build_stack
    from .train_config import TrainConfig

    try:
        cfg = TrainConfig.from_file(config)
        data = data or cfg.eval_data
        if not data:
            raise MedAnyError("No held-out data: pass --data or set eval_data in the config.")
        samples = load_samples(data, cfg.data_root)
        kinds = [k for k in ("image", "audio") if any(s.media.get(k) for s in samples)]
        src = Path(projector_dir or cfg.output_dir)
        if fairness:
            metrics = _fairness(cfg, samples, src, untrained, image_projector, max_samples or cfg.eval_max_samples,
                                max_new_tokens or cfg.eval_max_new_tokens, bootstrap)
            return _report(metrics, out)
        for kind in kinds:
            if not untrained:
                folder = src / f"{kind}_projector"
                if not folder.is_dir():
                    raise MedAnyError(f"No trained {kind} projector found; train first or pass --untrained.")
                setattr(cfg, f"init_{kind}_projector", str(folder))
        stack = build_stack(StackSpec.for_training(cfg, kinds))
        model, encoders = stack.model, stack.encoders
        if cfg.share_projector and len(kinds) > 1:  # the saved folders hold equal copies: one router again
            from projectors.moe import share_experts

            share_experts(model.projectors)
        if cfg.lora and not untrained and (src / "lora").is_dir():
            model.llm = require("peft", "all").PeftModel.from_pretrained(model.llm, str(src / "lora"))
        media_fn, _ = media_loader(encoders, model.device)
        metrics = evaluate(model, samples, media_fn, max_samples=max_samples or cfg.eval_max_samples,
                           max_new_tokens=max_new_tokens or cfg.eval_max_new_tokens, generate=not no_generate)
    except MedAnyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _report(metrics, out)


def _report(metrics: dict, out: str | None) -> int:
    text = json.dumps(metrics, indent=2)
    if out:
        Path(out).write_text(text)
    print(text)
    return 0


def _fairness(cfg, samples: list[Sample], src: Path, untrained: bool, image_projector: str | None,
              max_samples: int | None, max_new_tokens: int, bootstrap: int) -> dict:
    """``--fairness``: the assistant built from the config's LLM and image encoder answers the held-out set."""
    from .config import StackConfig
    from .fairness import fairness_eval, fairness_markdown, items_from_samples
    from .pipeline import Assistant

    if any(s.media.get("audio") for s in samples):
        raise MedAnyError("--fairness scores image records; this held-out set has recordings.")
    if untrained:
        projector = "none"
    elif image_projector:
        projector = image_projector
    elif (src / "image_projector").is_dir():
        projector = str(src / "image_projector")
    else:
        raise MedAnyError("No trained image projector found; train first, or pass --image-projector auto (the "
                          "shipped one) or --untrained.")
    if cfg.lora and not untrained and (src / "lora").is_dir():
        raise MedAnyError("--fairness answers with the assistant, which loads no LoRA adapter; evaluate this run "
                          "without --fairness.")
    if not cfg.encoder_for("image"):
        raise MedAnyError("--fairness needs an image encoder; the config names no image_encoder.")
    assistant = Assistant.load(StackConfig(llm=cfg.llm, vision=cfg.encoder_for("image"), speech="",
                                           image_projector=projector, knowledge="none"))
    items = items_from_samples(samples[:max_samples] if max_samples else samples)
    result = fairness_eval(assistant, items, max_new_tokens=max_new_tokens, n_boot=bootstrap, progress=True)
    projector_cfg = assistant.info.get("image", {}).get("projector") or {}
    result["stack"] = {"llm": cfg.llm, "backend": assistant.info.get("backend"), "image_projector": projector,
                       "projector_sha256": projector_cfg.get("sha256")}
    print(fairness_markdown(result), file=sys.stderr)
    return {"fairness": result}


if __name__ == "__main__":
    sys.exit(main())
