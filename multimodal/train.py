"""``medany train CONFIG``: projector training, from one CPU process to many GPUs.

The same entry point runs single-process, or under ``torchrun`` /
``accelerate launch`` with DDP or, for backbones too large for one GPU, the
frozen LLM sharded by FSDP (:mod:`multimodal.parallel`). Each rank reads its
share of every epoch through a :class:`~torch.utils.data.DistributedSampler`.

With ``TrainConfig.dp`` the projectors train with differential privacy
(:mod:`multimodal.privacy`): Poisson-sampled batches, per-conversation
clipping, calibrated noise, and the accountant's epsilon in every metrics line,
every checkpoint and the saved projector's ``projector.json``.

Data order is a pure function of (seed, epoch, world size): optimizer step
``k`` always consumes micro-batches ``k*accum .. k*accum+accum-1`` of that
stream. A checkpoint therefore only needs the step to put the data back where
it was; together with the exact trainable tensors, optimizer/scheduler state
and RNG states, ``--resume`` reproduces the uninterrupted run bit-for-bit.

Letters: B batch, L sequence length.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import checkpoint_dirs, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .data import ConversationDataset, check_supervision, collate, load_samples
from .errors import MedAnyError, require
from .media import encoder_token_counts, media_loader
from .metrics_log import ExpertLoad, MetricsLog, plot_expert_load, plot_loss
from .parallel import DistEnv, average_gradients, setup_distributed, shard_frozen_llm
from .privacy import collate_chunks
from .stack import StackSpec, build_stack
from .train_config import TrainConfig

KINDS = ("image", "audio")


# --- set-up -----------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --- model and data ---------------------------------------------------------------------


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
    """A collated batch as :meth:`MedAnyModel.forward`'s keyword arguments, on ``device``."""
    return {"input_ids": batch["input_ids"].to(device), "attention_mask": batch["attention_mask"].to(device),
            "labels": batch["labels"].to(device), "media": batch["media"].to(device)}



# --- the run ---------------------------------------------------------------------------


def _use_bf16(flag, device: torch.device) -> bool:
    if flag == "auto":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    return bool(flag)


def train(config: TrainConfig, *, resume: bool = False, on_end=None) -> dict:
    """Train the projectors (and LoRA adapters) described by ``config``; returns final metrics.

    Writes ``output_dir/{image,audio}_projector/``, ``lora/`` (stage 2 with
    LoRA), ``checkpoints/``, ``metrics.jsonl``, ``final_metrics.json`` and
    ``loss.png`` (and ``expert_load.png`` with MoE projectors). ``resume`` continues from the newest
    checkpoint, if any.
    ``on_end(model)``, when given, runs on every rank after the last step
    (before the process group is torn down).
    """
    env = setup_distributed()
    try:
        t_start = time.perf_counter()
        run = setup(config, env, resume)
        fitted = fit(run, t_start)
        if on_end is not None:
            on_end(run.model)
        return finish(run, fitted)
    finally:
        if env.ddp and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


@dataclass
class Run:
    """Everything :func:`setup` prepares for :func:`fit` and :func:`finish`."""

    config: TrainConfig
    env: DistEnv
    out: Path
    samples: list
    model: nn.Module
    encoders: dict
    net: nn.Module
    """``model``, or its DDP wrapper."""
    dataset: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    trained: list
    """The parameters that learn (projectors, LoRA adapters)."""
    start: int
    total: int
    per_epoch: int
    sharded: bool
    provenance: dict | None
    facts: dict
    """Supervision, feature-cache stats and preparation time, for the final metrics."""
    private: object = None
    """The :class:`~multimodal.privacy.PrivateTraining` of a run with ``dp``; None otherwise."""
    expert_load: ExpertLoad | None = None
    """MoE projectors' per-expert token counts (:func:`fit` sets it)."""

    def privacy(self) -> dict | None:
        """The privacy guarantee so far (the manifest's ``dp``), or None without ``dp``."""
        return self.private.manifest() if self.private is not None else None


def setup(config: TrainConfig, env: DistEnv, resume: bool) -> Run:
    """The model (LoRA, sharding), the data (feature cache), the optimizer, and the resumed state."""
    out = Path(config.output_dir)
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    samples = load_samples(config.data, config.data_root)
    kinds = _kinds(samples)
    stack = build_stack(StackSpec.for_training(config, kinds), feature_cache=config.use_feature_cache)
    model, encoders = stack.model, stack.encoders
    if config.share_projector:
        from projectors.moe import share_experts

        share_experts(model.projectors)  # before the optimizer: the shared parameters are counted once
    supervision = check_supervision(samples, model.tokenizer)
    sharded = env.ddp and config.parallel == "fsdp"
    _prepare_model(model, encoders, config, env, sharded)
    t_cache = time.perf_counter()
    dataset, cache_stats = prepare_data(config, samples, model, encoders, env, use_cache=config.use_feature_cache)
    facts = {"supervision": supervision, "cache_stats": cache_stats, "prepare_s": time.perf_counter() - t_cache}

    groups = [{"params": [p for p in model.projectors.parameters() if p.requires_grad], "lr": config.lr_projector}]
    lora_params = [p for n, p in model.llm.named_parameters() if p.requires_grad]
    if lora_params:
        groups.append({"params": lora_params, "lr": config.lr_lora})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    per_epoch = MicroBatches(len(dataset), config, env, 0, 0).per_epoch
    total = config.max_steps or max(1, math.ceil(config.epochs * per_epoch / config.grad_accum))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_lambda, warmup=config.warmup_steps, total=total, schedule=config.schedule))
    private = None
    if config.dp is not None:
        from .privacy import PrivacyError, PrivateTraining

        if env.ddp:
            raise PrivacyError("Differentially private training runs in one process for now; launch it without "
                               "torchrun / accelerate.")
        private = PrivateTraining(config.dp, model, optimizer, dataset_size=len(dataset),
                                  expected_batch_size=config.batch_size * config.grad_accum, steps=total)
        optimizer = private.optimizer
    start = _resume(out, model, optimizer, scheduler, env, private) if resume else 0
    net = model
    if env.ddp and not sharded:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[env.device.index] if env.device.type == "cuda" else None,
            find_unused_parameters=len(kinds) > 1 or _has_moe(model))
    provenance = _data_provenance(config) if env.main else None  # hashed once, saved with every projector
    return Run(config, env, out, samples, model, encoders, net, dataset, optimizer, scheduler,
               [p for g in groups for p in g["params"]], start, total, per_epoch, sharded, provenance, facts, private)


def _prepare_model(model, encoders: dict, config: TrainConfig, env: DistEnv, sharded: bool) -> None:
    """LoRA adapters, device placement, FSDP sharding, and train/eval modes."""
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


def _resume(out: Path, model, optimizer, scheduler, env: DistEnv, private=None) -> int:
    """The step the newest checkpoint reached (0 without one), its state (and privacy accountant) restored."""
    found = checkpoint_dirs(out)
    if not found:
        return 0
    trainer_state, rngs = load_checkpoint(found[-1], model=model, optimizer=optimizer, scheduler=scheduler)
    if trainer_state.get("world_size", 1) != env.world:
        raise MedAnyError("Resume with the same number of processes as the checkpointed run.")
    if (private is None) != ("dp" not in trainer_state):
        raise MedAnyError("The checkpoint comes from a differentially private run; resume it with its dp settings."
                          if private is None else
                          "The checkpoint comes from a run without differential privacy; it cannot continue as a "
                          "differentially private one.")
    if private is not None:
        private.load_state_dict(trainer_state["dp"])
    set_rng_state(rngs[env.rank])
    return int(trainer_state["step"])


def save_run(run: Run, step: int) -> None:
    """A checkpoint of ``run`` at ``step`` (every rank's RNG state, the projectors alongside)."""
    env, config = run.env, run.config
    rngs = [None] * env.world
    if env.ddp:
        torch.distributed.all_gather_object(rngs, rng_state())
    else:
        rngs = [rng_state()]
    if env.main:
        state = {"step": step, "epoch": step * config.grad_accum / run.per_epoch, "world_size": env.world,
                 "micro_batch": step * config.grad_accum, "seed": config.seed}
        if run.private is not None:
            state["dp"] = run.private.state_dict()
        save_checkpoint(run.out, step, model=run.model, optimizer=run.optimizer, scheduler=run.scheduler,
                        config_json=config.to_json(), trainer_state=state, rng_states=rngs,
                        save_projectors=lambda d: _save_projectors(run.model, config, d, step=step,
                                                                   data=run.provenance, privacy=run.privacy()),
                        keep_last=config.keep_last)
    env.barrier()


def fit(run: Run, t_start: float) -> dict:
    """The optimizer steps from ``run.start`` to ``run.total``: logged, checkpointed, finally saved."""
    config, env = run.config, run.env
    pad_id = run.model.tokenizer.pad_token_id
    if run.private is not None:  # one Poisson batch per step, as chunks of batch_size
        sampler = run.private.batches(len(run.dataset), start=run.start, stop=run.total)
        collate_fn = partial(collate_chunks, pad_id=pad_id, size=config.batch_size)
    else:
        sampler = MicroBatches(len(run.dataset), config, env, run.start * config.grad_accum,
                               run.total * config.grad_accum)
        collate_fn = partial(collate, pad_id=pad_id)
    loader = torch.utils.data.DataLoader(
        run.dataset, batch_sampler=sampler, collate_fn=collate_fn, num_workers=config.num_workers,
        # Its own generator: the loader must not draw from the global RNG, or a
        # resumed run would be one draw ahead of the uninterrupted one.
        generator=torch.Generator().manual_seed(config.seed))
    log = MetricsLog(run.out, env.main, config.tensorboard, run.start)
    bar = None
    if env.main and config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=run.total, initial=run.start, desc=f"stage {config.stage}", unit="step", dynamic_ncols=True)
    bf16 = _use_bf16(config.bf16, env.device)
    autocast = partial(torch.autocast, device_type=env.device.type, dtype=torch.bfloat16, enabled=bf16)
    batches, window = iter(loader), LossWindow()
    run.expert_load = ExpertLoad()
    first_loss = last_loss = None
    t_loop = time.perf_counter()
    for step in range(run.start, run.total):
        if run.private is not None:
            value, grad_norm, extra = _private_step(run, batches, autocast, window)
        else:
            (value, grad_norm), extra = _optimizer_step(run, batches, autocast, window), {}
        done = step + 1
        if value is not None:  # None: an empty Poisson batch (DP), which still spends budget
            first_loss = value if first_loss is None else first_loss
            last_loss = value
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss="-" if value is None else f"{value:.4f}", lr=f"{run.scheduler.get_last_lr()[0]:.2e}",
                            **({"eps": f"{extra['epsilon']:.3f}"} if "epsilon" in extra else {}))
        if done % config.log_every == 0 or done == run.total:
            log.write(window.record(done, run, value, grad_norm, t_start) | run.expert_load.record() | extra)
        if done % config.save_every == 0 and done != run.total:
            save_run(run, done)
    train_s = time.perf_counter() - t_loop
    if bar is not None:
        bar.close()
    if run.start < run.total:
        save_run(run, run.total)
    if run.private is not None:
        run.private.close()
    log.close()
    return {"first_loss": first_loss, "final_loss": last_loss, "train_s": train_s, "bf16": bf16}


def _optimizer_step(run: Run, batches, autocast, window: "LossWindow") -> tuple[float, object]:
    """One optimizer step over ``grad_accum`` micro-batches; ``(mean loss over ranks, grad norm)``."""
    config, env, net, model = run.config, run.env, run.net, run.model
    step_loss = torch.zeros((), device=env.device)
    for j in range(config.grad_accum):
        batch = _to(next(batches), env.device)
        sync = contextlib.nullcontext() if (net is model or j == config.grad_accum - 1) else net.no_sync()
        with sync:
            with autocast():
                loss = net(**batch).loss / config.grad_accum
                objective = loss + _routing_loss(run)
            objective.backward()
        step_loss += loss.detach().float()
        window.count(batch["input_ids"].shape[0] * env.world, int(batch["attention_mask"].sum()) * env.world)
    if run.sharded:
        average_gradients(run.trained, env.world)
    grad_norm = torch.nn.utils.clip_grad_norm_(run.trained, config.max_grad_norm) if config.max_grad_norm else None
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if env.ddp:
        torch.distributed.all_reduce(step_loss)
        step_loss /= env.world
    value = float(step_loss)
    window.add(value)
    return value, grad_norm


def _private_step(run: Run, batches, autocast, window: "LossWindow") -> tuple[float | None, None, dict]:
    """One DP-SGD step over a Poisson batch; ``(mean per-conversation loss or None when empty, None, stats)``.

    The global ``max_grad_norm`` clip is skipped: each conversation is clipped to ``dp.max_grad_norm`` instead.
    """
    losses = []
    for chunk in next(batches):
        batch = _to(chunk, run.env.device)
        losses.append(run.private.backward(run.model, batch, autocast))  # [B]
        window.count(batch["input_ids"].shape[0], int(batch["attention_mask"].sum()))
    stats = run.private.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    value = float(torch.cat(losses).mean()) if losses else None
    window.add(value)
    return value, None, stats


def _has_moe(model) -> bool:
    from projectors.moe import MoEProjector

    return any(isinstance(p, MoEProjector) for p in model.projectors.values())


def _routing_loss(run: Run):
    """The MoE projectors' weighted auxiliary losses of the forward that just ran (0 without MoE), divided like the
    loss over ``grad_accum``; their per-expert counts go to ``run.expert_load``."""
    from projectors.moe import collect_routing

    routing = collect_routing(run.model.projectors)
    if routing is None:
        return 0.0
    run.expert_load.add(routing)
    config = run.config
    return (config.moe_balance_weight * routing.balance + config.moe_z_weight * routing.z) / config.grad_accum


class LossWindow:
    """Losses, samples and tokens since the last metrics line."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.losses: list[float] = []
        self.steps = self.samples = self.tokens = 0
        self.t0 = time.perf_counter()

    def add(self, loss: float | None) -> None:
        """One optimizer step and its loss (None for an empty Poisson batch, which has none)."""
        self.steps += 1
        if loss is not None:
            self.losses.append(loss)

    def count(self, samples: int, tokens: int) -> None:
        self.samples += samples
        self.tokens += tokens

    def record(self, done: int, run: Run, value: float, grad_norm, t_start: float) -> dict:
        """The metrics line for step ``done``; starts a new window."""
        dt = max(time.perf_counter() - self.t0, 1e-9)
        rate = self.steps / dt
        out = {"step": done, "epoch": round(done * run.config.grad_accum / run.per_epoch, 4),
               "loss": sum(self.losses) / len(self.losses) if self.losses else None, "step_loss": value,
               "lr": run.scheduler.get_last_lr()[0], "grad_norm": None if grad_norm is None else float(grad_norm),
               "samples_per_s": self.samples / dt, "tokens_per_s": self.tokens / dt,
               "elapsed_s": time.perf_counter() - t_start, "eta_s": (run.total - done) / rate}
        self.reset()
        return out


def finish(run: Run, fitted: dict) -> dict:
    """Save the projectors (and LoRA), evaluate on the held-out set, plot, write ``final_metrics.json``."""
    config, env, model, out = run.config, run.env, run.model, run.out
    metrics = {"steps": run.total, "resumed_from": run.start, "first_loss": fitted["first_loss"],
               "final_loss": fitted["final_loss"], "train_s": fitted["train_s"],
               "steps_per_s": (run.total - run.start) / max(fitted["train_s"], 1e-9), "samples": len(run.samples),
               "supervised_tokens": run.facts["supervision"]["supervised_tokens"],
               "feature_cache": run.facts["cache_stats"], "prepare_s": run.facts["prepare_s"],
               "world_size": env.world, "bf16": fitted["bf16"], "parallel": config.parallel if env.ddp else "single"}
    if run.private is not None:
        metrics["dp"] = run.privacy()
    load = ExpertLoad.from_metrics(out / "metrics.jsonl").totals() if env.main else None  # a resumed run's too
    if load:
        metrics["expert_load"] = load
    if env.main:
        _save_projectors(model, config, out, step=run.total, data=run.provenance, metrics=metrics,
                         privacy=run.privacy())
        if config.lora:
            model.llm.save_pretrained(str(out / "lora"))  # safetensors by default
    if config.eval_data and (env.main or run.sharded):  # a sharded LLM runs on every rank, in step
        from .evaluate import evaluate

        model.eval()
        eval_samples = load_samples(config.eval_data, config.data_root)
        media_fn, _ = media_loader(run.encoders, env.device)
        metrics["eval"] = evaluate(_with_real_encoders(model, run.encoders), eval_samples, media_fn,
                                   max_samples=config.eval_max_samples, max_new_tokens=config.eval_max_new_tokens)
    if env.main:
        if config.plot:
            png = plot_loss(out / "metrics.jsonl", out / "loss.png")
            metrics["loss_png"] = str(png) if png else None
            if "expert_load" in metrics:
                png = plot_expert_load(out / "metrics.jsonl", out / "expert_load.png")
                metrics["expert_load_png"] = str(png) if png else None
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
                     metrics: dict | None = None, privacy: dict | None = None) -> None:
    """Write every projector; ``data`` is the provenance from :func:`_data_provenance`, ``privacy`` the
    guarantee of a differentially private run (``dp`` in ``projector.json``, which then holds neither the
    training losses nor the dataset's sha256: one could test a guessed record against the hash)."""
    from projectors import save_projector

    if privacy:  # what is shared carries nothing computed from the training data without noise
        data, metrics = {"file": data["file"], "sha256": None}, None
    for kind, proj in model.projectors.items():
        save_projector(proj, Path(out_dir) / f"{kind}_projector", encoder=config.encoder_for(kind), llm=config.llm,
                       stage=config.stage, step=step, data=data, seed=config.seed,
                       **({"metrics": {k: metrics[k] for k in ("first_loss", "final_loss", "steps")}}
                          if metrics else {}), **({"dp": privacy} if privacy else {}),
                       **({"shared_experts": list(model.projectors)} if config.share_projector else {}))


def main(argv: list[str] | None = None) -> int:
    """``medany train CONFIG [--resume] [--max-steps N] [--output-dir DIR]``: the command line of :func:`command`."""
    from .cli_args import run_command

    return run_command(command, argv, prog="medany train", positional=("config",))


def command(config: str, resume: bool = False, max_steps: int | None = None, output_dir: str | None = None) -> int:
    """Train MedAny projectors from a JSON or YAML config; prints the final metrics.

    Args:
        config: the training config (.json or .yaml; every field is documented in TrainConfig)
        resume: continue from the newest checkpoint
        max_steps: override the number of optimizer steps
        output_dir: override output_dir
    """
    try:
        cfg = TrainConfig.from_file(config)
        if max_steps is not None:
            cfg.max_steps = max_steps
        if output_dir:
            cfg.output_dir = output_dir
        metrics = train(cfg, resume=resume)
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
