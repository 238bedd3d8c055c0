"""``python -m recipes.dp_sweep CONFIG``: a recipe trained without DP and at several epsilons, side by side.

Every setting trains the same projector from the same config on the same
*members* (a seeded share of the training set, :func:`recipes.membership.split_members`)
for the same steps; the settings differ in ``dp`` alone and run one after the
other in this process, so their timings are comparable on a shared machine.
Each run is then scored on the recipe's held-out set (``eval_data``) and
attacked: loss-threshold membership inference, the per-conversation losses
of as many members as there are non-members (a seeded choice: balanced
classes) against those of the held-back *non-members* (same distribution,
never trained on). The config's ``dp`` gives delta and the clipping bound; its
epsilon is replaced by each ``--dp-epsilon``. A last row scores the untrained
(freshly initialised) projector the same way: the AUC that differences
between the two halves of the data alone give, what the others compare to.

Writes ``OUT/<setting>/`` (each run, as ``medany train`` does) and
``OUT/sweep.json``, and prints the table as Markdown.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from multimodal.errors import InputError, MedAnyError
from multimodal.train_config import DPConfig, TrainConfig

from .dataset import seeded, write_split
from .membership import auc_standard_error, membership_auc, split_members

DEFAULT_EPSILONS = (1.0, 3.0, 8.0)


def _stack(config: TrainConfig, kinds: list[str], run_dir: Path | None, *, feature_cache: bool):
    """The stack with ``run_dir``'s trained projectors, or (None) the fresh seeded ones training starts from."""
    from multimodal.stack import StackSpec, build_stack

    if run_dir is not None:
        config = dataclasses.replace(config, **{f"init_{k}_projector": str(run_dir / f"{k}_projector")
                                                for k in kinds})
    return build_stack(StackSpec.for_training(config, kinds), feature_cache=feature_cache)


def member_losses(config: TrainConfig, run_dir: Path | None, datasets: dict[str, Path]) -> dict[str, list[float]]:
    """Per-conversation losses of ``run_dir``'s trained projectors (None: untrained) on each of ``datasets``."""
    from multimodal.data import load_samples
    from multimodal.evaluate import sample_losses
    from multimodal.parallel import setup_distributed
    from multimodal.train import KINDS, prepare_data

    env = setup_distributed()
    samples = {name: load_samples(path, config.data_root) for name, path in datasets.items()}
    kinds = [k for k in KINDS if any(s.media.get(k) for group in samples.values() for s in group)]
    stack = _stack(config, kinds, run_dir, feature_cache=config.use_feature_cache)
    model = stack.model.to(env.device).eval()
    for enc in stack.encoders.values():
        enc.to(env.device)
    out = {}
    for name, group in samples.items():
        ds, _ = prepare_data(config, group, model, stack.encoders, env, use_cache=config.use_feature_cache)
        out[name] = sample_losses(model, [ds[i] for i in range(len(ds))], batch_size=config.batch_size)
    return out


def balanced_members(members: Path, nonmembers: Path, seed: int = 0) -> Path:
    """``<stem>.attacked.jsonl`` beside ``members``: a seeded choice of as many members as there are non-members."""
    lines = [ln for ln in members.read_text().splitlines() if ln.strip()]
    n = min(len(lines), sum(1 for ln in nonmembers.read_text().splitlines() if ln.strip()))
    chosen = sorted(seeded(seed, "attacked").sample(range(len(lines)), n))
    return write_split(members.with_name(members.name.replace(".members.", ".attacked.")),
                       [json.loads(lines[i]) for i in chosen])


def untrained_row(base: TrainConfig, attacked: Path, nonmembers: Path, out: Path) -> dict:
    """The freshly initialised projector, scored and attacked like the trained ones (no training, no timing)."""
    from multimodal.data import load_samples
    from multimodal.evaluate import evaluate
    from multimodal.media import media_loader
    from multimodal.train import KINDS

    held_out = {}
    if base.eval_data:
        samples = load_samples(base.eval_data, base.data_root)
        kinds = [k for k in KINDS if any(s.media.get(k) for s in samples)]
        stack = _stack(base, kinds, None, feature_cache=False)
        media_fn, _ = media_loader(stack.encoders, stack.model.device)
        held_out = evaluate(stack.model, samples, media_fn, max_samples=base.eval_max_samples,
                            max_new_tokens=base.eval_max_new_tokens)
    losses = member_losses(base, None, {"members": attacked, "nonmembers": nonmembers})
    (out / "untrained").mkdir(parents=True, exist_ok=True)
    (out / "untrained" / "membership.json").write_text(json.dumps(losses))
    return {"setting": "untrained", "target_epsilon": None, "epsilon": None, "noise_multiplier": None, "steps": 0,
            "members": None, **_scores(held_out, losses), "epochs": 0, "train_s": None, "s_per_epoch": None,
            "first_loss": None, "final_loss": None}


def _scores(held_out: dict, losses: dict[str, list[float]]) -> dict:
    """Held-out and membership-inference columns of a row."""
    auc = membership_auc(losses["members"], losses["nonmembers"])
    return {"held_out_loss": held_out.get("loss"), "field_accuracy": held_out.get("field_accuracy", {}),
            "groups": {g: v.get("field_accuracy", {}) for g, v in held_out.get("groups", {}).items()},
            "attacked_members": len(losses["members"]), "nonmembers": len(losses["nonmembers"]),
            "member_loss": sum(losses["members"]) / len(losses["members"]),
            "nonmember_loss": sum(losses["nonmembers"]) / len(losses["nonmembers"]), "mia_auc": auc,
            "mia_auc_se": auc_standard_error(auc, len(losses["members"]), len(losses["nonmembers"]))}


def run_setting(base: TrainConfig, dp: DPConfig | None, members: Path, nonmembers: Path, out: Path) -> dict:
    """Train and score one setting (``dp`` None: without DP) in ``out/<no-dp|eps-E>``; returns its table row."""
    from multimodal.train import train

    name, folder = ("no DP", out / "no-dp") if dp is None else (f"epsilon {dp.epsilon:g}", out / f"eps-{dp.epsilon:g}")
    cfg = dataclasses.replace(base, data=str(members), output_dir=str(folder), dp=dp, progress=False)
    metrics = train(cfg)
    attacked = balanced_members(members, nonmembers, seed=base.seed)
    losses = member_losses(cfg, folder, {"members": attacked, "nonmembers": nonmembers})
    n = metrics["samples"]
    epochs = metrics["steps"] * cfg.batch_size * cfg.grad_accum / n  # expected conversations seen / members
    row = {"setting": name, "target_epsilon": dp.epsilon if dp else None,
           "epsilon": metrics["dp"]["epsilon"] if dp else None,
           "noise_multiplier": metrics["dp"]["noise_multiplier"] if dp else None,
           "steps": metrics["steps"], "members": n, **_scores(metrics.get("eval", {}), losses), "epochs": epochs,
           "train_s": metrics["train_s"], "s_per_epoch": metrics["train_s"] / epochs,
           "first_loss": metrics["first_loss"], "final_loss": metrics["final_loss"]}
    (folder / "membership.json").write_text(json.dumps(losses))
    return row


def table(rows: list[dict]) -> str:
    """The sweep as a Markdown table (time against the "no DP" row; AUC +- 1.96 standard errors)."""
    fields = sorted({f for r in rows for f in r["field_accuracy"]})
    head = (["setting", "epsilon spent", "noise multiplier", "held-out loss"] + [f"{f} acc." for f in fields]
            + ["s / epoch", "time vs no DP", "MIA AUC"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    base_time = next(r["s_per_epoch"] for r in rows if r["setting"] == "no DP")

    def num(v, fmt="{:.2f}"):
        return "-" if v is None else fmt.format(v)

    for r in rows:
        cells = [r["setting"], num(r["epsilon"]), num(r["noise_multiplier"]), num(r["held_out_loss"], "{:.3f}")]
        cells += [num(r["field_accuracy"].get(f)) for f in fields]
        ratio = None if r["s_per_epoch"] is None else r["s_per_epoch"] / base_time
        cells += [num(r["s_per_epoch"], "{:.0f}"), num(ratio, "{:.2f}x"),
                  f"{r['mia_auc']:.3f} +- {1.96 * r['mia_auc_se']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m recipes.dp_sweep CONFIG [--dp-epsilon E ...] [--nonmember-share F] [--max-steps N] [--out DIR]``."""
    from multimodal.cli_args import run_command

    return run_command(command, argv, prog="python -m recipes.dp_sweep", positional=("config",))


def command(config: str, dp_epsilon: tuple[float, ...] = DEFAULT_EPSILONS, nonmember_share: float = 0.2,
            max_steps: int | None = None, out: str | None = None) -> int:
    """Train a recipe without DP and at each epsilon; print held-out accuracy, time and membership-inference AUC.

    Args:
        config: the recipe's training config with a dp section (its delta and max_grad_norm are used)
        dp_epsilon: target epsilons to train at (default 1, 3 and 8), besides the run without DP
        nonmember_share: share of the training set held back as membership-inference non-members
        max_steps: override the config's number of optimizer steps (every setting takes the same)
        out: folder for the runs and sweep.json (default: the config's output_dir + "-sweep")
    """
    try:
        base = TrainConfig.from_file(config)
        if base.dp is None:
            raise InputError("The sweep's config needs a dp section: its delta and max_grad_norm apply to every "
                             "epsilon.")
        if max_steps is not None:
            base.max_steps = max_steps
        folder = Path(out or base.output_dir + "-sweep")
        folder.mkdir(parents=True, exist_ok=True)
        members, nonmembers = split_members(base.data, nonmember_share, seed=base.seed)
        rows = []
        for dp in [None] + [dataclasses.replace(base.dp, epsilon=float(e)) for e in dp_epsilon]:
            rows.append(run_setting(base, dp, members, nonmembers, folder))
            print(f"{rows[-1]['setting']}: {rows[-1]['train_s']:.0f} s of training", file=sys.stderr)
        rows.append(untrained_row(base, balanced_members(members, nonmembers, seed=base.seed), nonmembers, folder))
    except MedAnyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (folder / "sweep.json").write_text(json.dumps({"config": str(config), "delta": base.dp.delta,
                                                   "max_grad_norm": base.dp.max_grad_norm, "rows": rows},
                                                  indent=2))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
