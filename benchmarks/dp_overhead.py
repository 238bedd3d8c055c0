"""What differential privacy costs per optimizer step, measured interleaved on the same batches.

Builds the run of a training config twice, as ``medany train`` would (one with
its ``dp`` section, one without), then times optimizer steps on the same
fixed batches of ``batch_size`` conversations, alternating ordinary and DP
steps round by round, so load from other programs on a shared machine falls
on both alike. A DP step is the per-sample loss, the backward pass with
Opacus's per-sample gradient hooks, folding the per-conversation gradients,
clipping, noise, AdamW and the accountant; an ordinary step is the token-mean
loss, backward, global clipping and AdamW. Poisson sampling changes only
which conversations a step sees (and their number), not the cost per
conversation, so it is left out here.

    OMP_NUM_THREADS=1 python benchmarks/dp_overhead.py recipes/image/config.dp.json [--rounds 6] [--steps 2]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import platform
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="training config with a dp section")
    parser.add_argument("--rounds", type=int, default=6, help="alternations of ordinary and DP steps")
    parser.add_argument("--steps", type=int, default=2, help="steps of each kind per round")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args(argv)

    import torch

    from multimodal.data import collate
    from multimodal.parallel import DistEnv
    from multimodal.train import _to, setup
    from multimodal.train_config import TrainConfig

    cfg = TrainConfig.from_file(args.config)
    if cfg.dp is None:
        parser.error("the config has no dp section")
    runs = {"ordinary": setup(dataclasses.replace(cfg, dp=None, output_dir=cfg.output_dir + "-bench-plain"),
                              DistEnv(), resume=False),
            "dp": setup(dataclasses.replace(cfg, output_dir=cfg.output_dir + "-bench-dp"), DistEnv(), resume=False)}
    pad = runs["dp"].model.tokenizer.pad_token_id
    n = len(runs["dp"].dataset)
    batches = [_to(collate([runs["dp"].dataset[(i * cfg.batch_size + j) % n] for j in range(cfg.batch_size)], pad),
                   torch.device("cpu")) for i in range(args.steps)]

    def ordinary_step(batch):
        run = runs["ordinary"]
        run.model(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(run.trained, cfg.max_grad_norm)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)

    def dp_step(batch):
        run = runs["dp"]
        run.private.backward(run.model, batch, contextlib.nullcontext)
        run.private.step()
        run.optimizer.zero_grad(set_to_none=True)

    times: dict[str, list[float]] = {"ordinary": [], "dp": []}
    ordinary_step(batches[0])  # warm-up of both (first-call allocations)
    dp_step(batches[0])
    for r in range(args.rounds):
        order = [("ordinary", ordinary_step), ("dp", dp_step)]
        for name, step in order if r % 2 == 0 else order[::-1]:
            for batch in batches:
                t0 = time.perf_counter()
                step(batch)
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {"config": args.config, "batch_size": cfg.batch_size, "rounds": args.rounds,
              "steps_per_round": args.steps, "median_s_per_step": med, "overhead": med["dp"] / med["ordinary"],
              "all_s": times, "machine": f"{platform.processor() or platform.machine()}, "
                                         f"{torch.get_num_threads()} torch threads"}
    print(f"| step | median s / step ({cfg.batch_size} conversations) | steps timed |\n|---|---|---|")
    for k in ("ordinary", "dp"):
        print(f"| {k} | {med[k]:.2f} | {len(times[k])} |")
    print(f"\nDP / ordinary: {result['overhead']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
