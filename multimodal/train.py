"""``medany train CONFIG``: projector training, from one CPU process to many GPUs.

The same entry point runs single-process, or under ``torchrun`` /
``accelerate launch`` with DDP or, for backbones too large for one GPU, the
frozen LLM sharded by FSDP (:mod:`multimodal.parallel`). Each rank reads its
share of every epoch through a :class:`~torch.utils.data.DistributedSampler`.

Data order is a pure function of (seed, epoch, world size): optimizer step
``k`` always consumes micro-batches ``k*accum .. k*accum+accum-1`` of that
stream. A checkpoint therefore only needs the step to put the data back where
it was; together with the exact trainable tensors, optimizer/scheduler state
and RNG states, ``--resume`` reproduces the uninterrupted run bit-for-bit.

Letters: B batch, L sequence length.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import checkpoint_dirs, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .data import ConversationDataset, check_supervision, collate, load_samples
from .errors import MedAnyError, require
from .parallel import DistEnv, average_gradients, setup_distributed, shard_frozen_llm
from .train_config import TrainConfig

KINDS = ("image", "audio")


# --- set-up -----------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --- model and data ---------------------------------------------------------------------


def stack_spec(config: TrainConfig, kinds: list[str]):
    """The :class:`~multimodal.stack.StackSpec` a training run builds: the transformers backend (it
    trains), each modality's encoder, and its projector fresh (seeded) or from ``init_*``."""
    from .stack import MediaSpec, StackSpec

    media = {}
    for kind in kinds:
        name = config.encoder_for(kind)
        if not name:
            raise MedAnyError(f"The data has {kind} samples but the config names no {kind}_encoder.")
        init = config.init_projector_for(kind)
        media[kind] = (MediaSpec(name, projector=init) if init else
                       MediaSpec(name, fresh=config.projector_for(kind), seed=config.seed + KINDS.index(kind),
                                 fresh_kwargs=config.projector_kwargs.get(kind, {})))
    return StackSpec(llm=config.llm, media=media, backend="transformers")


def build_stack(config: TrainConfig, kinds: list[str], *, feature_cache: bool = False):
    """``(MedAnyModel, {kind: encoder})`` for ``config`` (:func:`stack_spec`), encoders and LLM frozen.

    With ``feature_cache`` the model gets identity encoders (it is fed cached
    tokens); the real encoders are returned for building the cache.
    """
    from .stack import build_stack as assemble

    stack = assemble(stack_spec(config, kinds), feature_cache=feature_cache)
    return stack.model, stack.encoders


def media_loader(encoders: dict, device: torch.device):
    """``(media_fn, encode_fn)``: one file -> model input, and files -> encoder tokens (for the cache)."""
    from .io import load_audio, load_image

    def media_fn(kind: str, path):
        enc = encoders[kind]
        if kind == "image":
            return enc.preprocess(load_image(path).pixels), None
        clip = load_audio(path)
        valid = enc.valid_frames(clip) if hasattr(enc, "valid_frames") else None
        return enc.preprocess(clip), valid

    def encode_fn(kind: str, paths):
        items = [media_fn(kind, p) for p in paths]
        x = torch.stack([t for t, _ in items]).to(device)  # [n, ...]
        return encoders[kind](x), [v for _, v in items]  # [n, N, D]

    return media_fn, encode_fn


def encoder_token_counts(encoders: dict, media_fn, samples, cache=None) -> dict[str, int]:
    """Encoder tokens per item for each kind (needed when the loader reports no valid count)."""
    counts = {}
    for kind, enc in encoders.items():
        n = enc.num_tokens() if hasattr(enc, "num_tokens") else None
        if n is None:
            first = next(f for s in samples for f in s.media.get(kind, []))
            if cache is not None:
                n = int(cache[kind].get(first)[0].shape[0])
            else:
                with torch.no_grad():
                    n = int(enc(media_fn(kind, first)[0][None]).shape[1])
        counts[kind] = n
    return counts


def _kinds(samples) -> list[str]:
    return [k for k in KINDS if any(s.media.get(k) for s in samples)]


def prepare_data(config: TrainConfig, samples, model, encoders, env: DistEnv, *, use_cache: bool):
    """The training dataset, building the feature cache first when asked (returns dataset, cache stats)."""
    from .feature_cache import FeatureCache
    from .paths import cache_dir

    media_fn, encode_fn = media_loader(encoders, env.device)
    caches, stats = None, {}
    if use_cache:
        root = config.feature_cache_dir or cache_dir("features")
        caches = {k: FeatureCache(root, config.encoder_for(k)) for k in encoders}
        if env.local_rank == 0:
            for kind, cache in caches.items():
                files = [f for s in samples for f in s.media.get(kind, [])]
                stats[kind] = cache.build(files, partial(encode_fn, kind))
        env.barrier()
        if env.local_rank != 0:  # the builder's caches are current (and keep their file-hash memo)
            caches = {k: FeatureCache(root, config.encoder_for(k)) for k in encoders}  # read the new index

        def cached_fn(kind, path):
            return caches[kind].get(path)

        fn = cached_fn
    else:
        fn = media_fn
    counts = encoder_token_counts(encoders, media_fn, samples, caches)
    ds = ConversationDataset(samples, model.tokenizer, fn, model.token_counts, encoder_tokens=counts,
                             max_length=config.max_length)
    return ds, stats


class MicroBatches:
    """Index lists of micro-batches ``start .. stop-1`` of the endless, epoch-shuffled stream."""

    def __init__(self, n: int, config: TrainConfig, env: DistEnv, start: int, stop: int):
        from torch.utils.data import DistributedSampler

        self.sampler = DistributedSampler(range(n), num_replicas=env.world, rank=env.rank, shuffle=True,
                                          seed=config.seed, drop_last=False)
        self.bs, self.start, self.stop = config.batch_size, start, stop
        self.per_epoch = math.ceil(len(self.sampler) / self.bs)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        self.sampler.set_epoch(epoch)
        order = list(self.sampler)
        return [order[i : i + self.bs] for i in range(0, len(order), self.bs)]

    def __iter__(self):
        epoch, cached = -1, []
        for m in range(self.start, self.stop):
            if m // self.per_epoch != epoch:
                epoch = m // self.per_epoch
                cached = self.epoch_batches(epoch)
            yield cached[m % self.per_epoch]

    def __len__(self) -> int:
        return self.stop - self.start


def lr_lambda(step: int, *, warmup: int, total: int, schedule: str) -> float:
    """Multiplier of the peak LR: linear warm-up, then constant or cosine down to 10%."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def _to(batch: dict, device) -> dict:
    media = {k: (x.to(device), v) for k, (x, v) in batch["media_inputs"].items()}
    return {"input_ids": batch["input_ids"].to(device), "attention_mask": batch["attention_mask"].to(device),
            "labels": batch["labels"].to(device), "media_inputs": media}



# --- logging --------------------------------------------------------------------------


class MetricsLog:
    """metrics.jsonl (+ TensorBoard when asked) on rank 0; truncated to ``upto`` on resume."""

    def __init__(self, out: Path, enabled: bool, tensorboard: bool, upto: int):
        self.path = out / "metrics.jsonl"
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        keep = []
        if upto and self.path.is_file():
            keep = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln).get("step", 0) <= upto]
        self.path.write_text("".join(ln + "\n" for ln in keep))
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                print("TensorBoard logging skipped: install 'tensorboard' to enable it.", file=sys.stderr)

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.tb.add_scalar(f"train/{k}", v, record["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def plot_loss(metrics_path: Path, out_png: Path) -> Path | None:
    """Loss curve PNG from metrics.jsonl; None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [json.loads(ln) for ln in metrics_path.read_text().splitlines() if ln.strip()]
    rows = [r for r in rows if "loss" in r]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


# --- the loop ---------------------------------------------------------------------------


def _use_bf16(flag, device: torch.device) -> bool:
    if flag == "auto":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    return bool(flag)


def train(config: TrainConfig, *, resume: bool = False, on_end=None) -> dict:
    """Train the projectors (and LoRA adapters) described by ``config``; returns final metrics.

    Writes ``output_dir/{image,audio}_projector/``, ``lora/`` (stage 2 with
    LoRA), ``checkpoints/``, ``metrics.jsonl``, ``final_metrics.json`` and
    ``loss.png``. ``resume`` continues from the newest checkpoint, if any.
    ``on_end(model)``, when given, runs on every rank after the last step
    (before the process group is torn down).
    """
    env = setup_distributed()
    try:
        return _train(config, env, resume, on_end)
    finally:
        if env.ddp and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _train(config: TrainConfig, env: DistEnv, resume: bool, on_end=None) -> dict:
    t_start = time.perf_counter()
    out = Path(config.output_dir)
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)

    samples = load_samples(config.data, config.data_root)
    kinds = _kinds(samples)
    use_cache = config.use_feature_cache
    model, encoders = build_stack(config, kinds, feature_cache=use_cache)
    supervision = check_supervision(samples, model.tokenizer)
    sharded = env.ddp and config.parallel == "fsdp"
    if config.lora:
        peft = require("peft", "all")
        lcfg = peft.LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                               target_modules=list(config.lora_targets), bias="none")
        model.llm = peft.get_peft_model(model.llm, lcfg)
    model.to(env.device)
    for enc in encoders.values():
        enc.to(env.device)
    if sharded:
        shard_frozen_llm(model.llm)
    model.eval()
    model.projectors.train()
    if config.grad_checkpointing:
        model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.llm.train()  # HF only checkpoints in training mode
    elif config.lora:
        model.llm.train()

    t_cache = time.perf_counter()
    dataset, cache_stats = prepare_data(config, samples, model, encoders, env, use_cache=use_cache)
    cache_s = time.perf_counter() - t_cache

    groups = [{"params": [p for p in model.projectors.parameters() if p.requires_grad], "lr": config.lr_projector}]
    lora_params = [p for n, p in model.llm.named_parameters() if p.requires_grad]
    if lora_params:
        groups.append({"params": lora_params, "lr": config.lr_lora})
    trained = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)

    per_epoch = MicroBatches(len(dataset), config, env, 0, 0).per_epoch
    total = config.max_steps or max(1, math.ceil(config.epochs * per_epoch / config.grad_accum))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_lambda, warmup=config.warmup_steps, total=total, schedule=config.schedule))

    start = 0
    found = checkpoint_dirs(out) if resume else []
    if found:
        trainer_state, rngs = load_checkpoint(found[-1], model=model, optimizer=optimizer, scheduler=scheduler)
        if trainer_state.get("world_size", 1) != env.world:
            raise MedAnyError("Resume with the same number of processes as the checkpointed run.")
        start = int(trainer_state["step"])
        set_rng_state(rngs[env.rank])
    net = model
    if env.ddp and not sharded:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[env.device.index] if env.device.type == "cuda" else None,
            find_unused_parameters=len(kinds) > 1)

    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=MicroBatches(len(dataset), config, env, start * config.grad_accum,
                                            total * config.grad_accum),
        collate_fn=partial(collate, pad_id=model.tokenizer.pad_token_id), num_workers=config.num_workers,
        # Its own generator: the loader must not draw from the global RNG, or a
        # resumed run would be one draw ahead of the uninterrupted one.
        generator=torch.Generator().manual_seed(config.seed))
    log = MetricsLog(out, env.main, config.tensorboard, start)
    bar = None
    if env.main and config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=start, desc=f"stage {config.stage}", unit="step", dynamic_ncols=True)
    bf16 = _use_bf16(config.bf16, env.device)
    autocast = partial(torch.autocast, device_type=env.device.type, dtype=torch.bfloat16, enabled=bf16)

    provenance = _data_provenance(config) if env.main else None  # hashed once, saved with every projector

    def save(step: int) -> None:
        rngs = [None] * env.world
        if env.ddp:
            torch.distributed.all_gather_object(rngs, rng_state())
        else:
            rngs = [rng_state()]
        if env.main:
            state = {"step": step, "epoch": step * config.grad_accum / per_epoch, "world_size": env.world,
                     "micro_batch": step * config.grad_accum, "seed": config.seed}
            save_checkpoint(out, step, model=model, optimizer=optimizer, scheduler=scheduler,
                            config_json=config.to_json(), trainer_state=state, rng_states=rngs,
                            save_projectors=lambda d: _save_projectors(model, config, d, step=step, data=provenance),
                            keep_last=config.keep_last)
        env.barrier()

    batches = iter(loader)
    first_loss = last_loss = None
    window_losses, window_samples, window_tokens, t_window = [], 0, 0, time.perf_counter()
    t_loop = time.perf_counter()
    for step in range(start, total):
        step_loss = torch.zeros((), device=env.device)
        for j in range(config.grad_accum):
            batch = _to(next(batches), env.device)
            sync = contextlib.nullcontext() if (net is model or j == config.grad_accum - 1) else net.no_sync()
            with sync:
                with autocast():
                    loss = net(**batch).loss / config.grad_accum
                loss.backward()
            step_loss += loss.detach().float()
            window_samples += batch["input_ids"].shape[0] * env.world
            window_tokens += int(batch["attention_mask"].sum()) * env.world
        if sharded:
            average_gradients(trained, env.world)
        grad_norm = torch.nn.utils.clip_grad_norm_(trained, config.max_grad_norm) if config.max_grad_norm else None
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if env.ddp:
            torch.distributed.all_reduce(step_loss)
            step_loss /= env.world
        value = float(step_loss)
        first_loss = value if first_loss is None else first_loss
        last_loss = value
        window_losses.append(value)
        done = step + 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if done % config.log_every == 0 or done == total:
            dt = max(time.perf_counter() - t_window, 1e-9)
            rate = len(window_losses) / dt
            log.write({"step": done, "epoch": round(done * config.grad_accum / per_epoch, 4),
                       "loss": sum(window_losses) / len(window_losses), "step_loss": value,
                       "lr": scheduler.get_last_lr()[0],
                       "grad_norm": None if grad_norm is None else float(grad_norm),
                       "samples_per_s": window_samples / dt, "tokens_per_s": window_tokens / dt,
                       "elapsed_s": time.perf_counter() - t_start, "eta_s": (total - done) / rate})
            window_losses, window_samples, window_tokens, t_window = [], 0, 0, time.perf_counter()
        if done % config.save_every == 0 and done != total:
            save(done)
    train_s = time.perf_counter() - t_loop
    if bar is not None:
        bar.close()
    if start < total:
        save(total)
    log.close()
    if on_end is not None:
        on_end(model)

    metrics = {"steps": total, "resumed_from": start, "first_loss": first_loss, "final_loss": last_loss,
               "train_s": train_s, "steps_per_s": (total - start) / max(train_s, 1e-9),
               "samples": len(samples), "supervised_tokens": supervision["supervised_tokens"],
               "feature_cache": cache_stats, "prepare_s": cache_s, "world_size": env.world, "bf16": bf16,
               "parallel": config.parallel if env.ddp else "single"}
    if env.main:
        _save_projectors(model, config, out, step=total, data=provenance, metrics=metrics)
        if config.lora:
            model.llm.save_pretrained(str(out / "lora"))  # safetensors by default
    if config.eval_data and (env.main or sharded):  # a sharded LLM runs on every rank, in step
        from .evaluate import evaluate

        model.eval()
        eval_samples = load_samples(config.eval_data, config.data_root)
        media_fn, _ = media_loader(encoders, env.device)
        metrics["eval"] = evaluate(_with_real_encoders(model, encoders), eval_samples, media_fn,
                                   max_samples=config.eval_max_samples, max_new_tokens=config.eval_max_new_tokens)
    if env.main:
        if config.plot:
            png = plot_loss(out / "metrics.jsonl", out / "loss.png")
            metrics["loss_png"] = str(png) if png else None
        (out / "final_metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True, default=str))
    env.barrier()
    return metrics


def _data_provenance(config: TrainConfig) -> dict:
    """The training set's file name and sha256, recorded with every saved projector."""
    from .paths import file_sha256

    return {"file": Path(config.data).name, "sha256": file_sha256(config.data)}


def _with_real_encoders(model, encoders):
    """The same model with real encoders in place of the feature-cache identities."""
    model.encoders = nn.ModuleDict(encoders)
    return model


def _save_projectors(model, config: TrainConfig, out_dir, *, step: int, data: dict,
                     metrics: dict | None = None) -> None:
    """Write every projector; ``data`` is the provenance from :func:`_data_provenance`."""
    from projectors import save_projector

    for kind, proj in model.projectors.items():
        save_projector(proj, Path(out_dir) / f"{kind}_projector", encoder=config.encoder_for(kind), llm=config.llm,
                       stage=config.stage, step=step, data=data, seed=config.seed,
                       **({"metrics": {k: metrics[k] for k in ("first_loss", "final_loss", "steps")}}
                          if metrics else {}))


def main(argv: list[str] | None = None) -> int:
    """``medany train CONFIG [--resume] [--max-steps N] [--output-dir DIR]``."""
    parser = argparse.ArgumentParser(prog="medany train", description="Train MedAny projectors.")
    parser.add_argument("config", help="training config (.json or .yaml)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument("--max-steps", type=int, default=None, help="override the number of optimizer steps")
    parser.add_argument("--output-dir", default=None, help="override output_dir")
    args = parser.parse_args(argv)
    try:
        config = TrainConfig.from_file(args.config)
        if args.max_steps is not None:
            config.max_steps = args.max_steps
        if args.output_dir:
            config.output_dir = args.output_dir
        metrics = train(config, resume=args.resume)
    except MedAnyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in metrics.items() if k != "eval"} | ({"eval": metrics["eval"]}
                                                                             if "eval" in metrics else {}),
                         indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
