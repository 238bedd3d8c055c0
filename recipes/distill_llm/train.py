"""``python -m recipes.distill_llm.train DATA OUT``: LoRA-distil the teacher's answers into the student LLM.

The student (default ``embedded-small``, SmolLM2-135M, de-quantized into transformers) gets LoRA adapters
on every attention and MLP projection and learns the teacher's kept answers (``DATA/train.jsonl`` from
:mod:`.teacher`) with :func:`.kd.distill_losses`: ``--alpha 0`` is sequence-level distillation alone,
``--alpha 0.5`` (default) mixes in the teacher's top-k logits where the vocabularies align.

Writes under ``OUT`` (``out/`` is git-ignored): ``lora/`` (the adapter, safetensors), ``student/`` (the
adapter merged into the student: a ``save_pretrained`` folder with safetensors weights that the stack loads
as any local model, ``medany chat --llm OUT/student ...``, on the transformers backend), ``metrics.jsonl``
(one line per step) and ``distill.json`` (settings, data sha256, alignment coverage, first/last losses).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from multimodal.data import load_samples
from multimodal.errors import MedAnyError, require
from multimodal.paths import file_sha256
from multimodal.train import lr_lambda, seed_everything

from .kd import collate_examples, distill_losses, student_example

FIT_AFTER = 3
"""Steps timed before a run with a time budget fits its plan to it."""


@dataclass
class DistillConfig:
    """One student run."""

    data: str
    """``train.jsonl`` written by :mod:`recipes.distill_llm.teacher`."""
    output_dir: str
    student: str = "embedded-small"
    """The student LLM (:func:`multimodal.backbone.load_llm` name or folder)."""
    alpha: float = 0.5
    """Weight of the logit term: ``(1 - alpha) * CE + alpha * KD``; 0 is sequence-level distillation only."""
    epochs: float = 2.0
    batch_size: int = 8
    lr: float = 5e-4
    warmup_steps: int = 3
    max_grad_norm: float = 1.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_targets: list = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                        "up_proj", "down_proj"])
    seed: int = 0
    max_steps: int | None = None
    """Overrides ``epochs`` when set."""
    budget_s: float | None = None
    """Seconds the run may train. After the first steps the planned steps are cut to what fits (the cosine
    schedule shrinks with them, so it still ends decayed) and, should the machine slow down, the run stops
    after the step that passes the budget; a run on a shared machine ends in time and saves what it learned.
    The summary's ``steps`` is what was planned in the end, ``steps_run`` what ran."""

    def __post_init__(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise MedAnyError("alpha must be between 0 and 1.")
        if self.batch_size < 1 or self.epochs <= 0:
            raise MedAnyError("batch_size must be at least 1 and epochs positive.")


def load_records(path: str | Path) -> list[dict]:
    """The teacher's records, validated as training data first (:func:`multimodal.data.load_samples`)."""
    load_samples(path)
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


def add_lora(model, config: DistillConfig):
    peft = require("peft", "all")
    lcfg = peft.LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                           target_modules=list(config.lora_targets), bias="none")
    return peft.get_peft_model(model, lcfg)


def batches(n: int, batch_size: int, seed: int, steps: int):
    """Index lists for ``steps`` steps: epoch after epoch, each shuffled by ``(seed, epoch)``."""
    epoch, order = 0, []
    for _ in range(steps):
        if len(order) < batch_size:
            fresh = list(range(n))
            random.Random(f"{seed}:{epoch}").shuffle(fresh)
            order += fresh
            epoch += 1
        yield order[:batch_size]
        del order[:batch_size]


def distill(config: DistillConfig, *, model=None, tokenizer=None, progress: bool = False) -> dict:
    """Train the student on ``config.data``; returns the summary also written to ``distill.json``."""
    from multimodal.backbone import load_llm

    seed_everything(config.seed)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = load_records(config.data)
    if model is None:
        model, tokenizer, _ = load_llm(config.student)
    vocab = tokenizer.get_vocab()
    examples = [student_example(tokenizer, r, vocab) for r in records]
    model = add_lora(model, config)
    model.train()
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=config.lr, weight_decay=0.0)
    per_epoch = math.ceil(len(examples) / config.batch_size)
    steps = config.max_steps or max(1, math.ceil(config.epochs * per_epoch))
    plan = {"total": steps}
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_lambda(s, warmup=config.warmup_steps, total=plan["total"], schedule="cosine"))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    log, first, t0 = [], None, time.perf_counter()
    with open(out / "metrics.jsonl", "w") as f:
        for step, idx in enumerate(batches(len(examples), config.batch_size, config.seed, steps), 1):
            if step > plan["total"]:
                break
            batch = collate_examples([examples[i] for i in idx], pad)
            losses = distill_losses(model, batch, config.alpha)
            losses["loss"].backward()
            norm = torch.nn.utils.clip_grad_norm_(trained, config.max_grad_norm) if config.max_grad_norm else None
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            row = {"step": step, **{k: round(float(v.detach()), 5) for k, v in losses.items()},
                   "grad_norm": None if norm is None else round(float(norm), 4),
                   "lr": scheduler.get_last_lr()[0], "aligned": int(batch["kd_index"].numel()),
                   "elapsed_s": round(time.perf_counter() - t0, 1)}
            first = first or row
            log.append(row)
            f.write(json.dumps(row) + "\n")
            f.flush()
            if progress:
                print(f"step {step}/{plan['total']} loss {row['loss']:.4f} ce {row['ce']:.4f} kd {row['kd']:.4f} "
                      f"({row['elapsed_s']:.0f} s)", file=sys.stderr)
            if config.budget_s is not None:
                spent = time.perf_counter() - t0
                if step == FIT_AFTER and step < plan["total"]:  # cut the plan to what the budget holds
                    plan["total"] = max(step + 1, min(plan["total"], int(config.budget_s / (spent / step))))
                if spent > config.budget_s or step >= plan["total"]:
                    break
    train_s = time.perf_counter() - t0
    model.eval()
    model.save_pretrained(str(out / "lora"))  # the adapter alone, safetensors
    merged = model.merge_and_unload()
    merged.save_pretrained(str(out / "student"), safe_serialization=True)
    tokenizer.save_pretrained(str(out / "student"))
    stats = [e["stats"] for e in examples]
    supervised, aligned = sum(s["supervised"] for s in stats), sum(s["aligned"] for s in stats)
    summary = {"config": asdict(config), "records": len(records), "data_sha256": file_sha256(config.data),
               "steps": plan["total"], "steps_run": len(log), "train_s": round(train_s, 1),
               "s_per_step": round(train_s / len(log), 2),
               "first": first, "last": log[-1],
               "alignment": {"supervised_tokens": supervised, "aligned_tokens": aligned,
                             "aligned_share": round(aligned / max(supervised, 1), 4),
                             "teacher_mass_kept": round(sum(s["mapped_mass"] * s["aligned"] for s in stats)
                                                        / max(aligned, 1), 4)},
               "trainable_params": sum(p.numel() for p in trained)}
    (out / "distill.json").write_text(json.dumps(summary, indent=2))
    (out / "student" / "medany_distill.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.distill_llm.train", description=__doc__.split("\n")[0])
    parser.add_argument("data", help="train.jsonl written by python -m recipes.distill_llm.teacher")
    parser.add_argument("out", help="output folder (lora/, student/, metrics.jsonl, distill.json)")
    parser.add_argument("--student", default="embedded-small")
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the logit term (0: sequence-level only)")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-s", type=float, help="seconds of training: the planned steps are cut to fit")
    args = parser.parse_args(argv)
    try:
        config = DistillConfig(data=args.data, output_dir=args.out, student=args.student, alpha=args.alpha,
                               epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lora_r=args.lora_r,
                               lora_alpha=2 * args.lora_r, max_steps=args.max_steps, seed=args.seed,
                               budget_s=args.budget_s)
        summary = distill(config, progress=True)
    except MedAnyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
