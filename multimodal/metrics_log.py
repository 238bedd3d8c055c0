"""Training metrics: ``metrics.jsonl`` (and TensorBoard when asked) during a run, the loss and expert-load curves
after it."""

from __future__ import annotations

import json
import sys
from pathlib import Path


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
                elif k == "expert_load":
                    for kind, fractions in v.items():
                        self.tb.add_scalars(f"train/expert_load_{kind}",
                                            {str(e): f for e, f in enumerate(fractions)}, record["step"])

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
    rows = [r for r in rows if r.get("loss") is not None]  # None: only empty Poisson batches (DP) so far
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


class ExpertLoad:
    """Per-expert token counts of MoE projectors (:func:`projectors.moe.collect_routing`), per modality.

    :meth:`record` gives the fractions since the last call (each metrics line), :meth:`totals` those since the
    run (re)started; with a shared projector ``"all"`` pools the modalities.
    """

    def __init__(self):
        self.window: dict[str, list[float]] = {}
        self.total: dict[str, list[float]] = {}
        self.shared = False
        self.losses: list[tuple[float, float]] = []

    def add(self, routing) -> None:
        """One forward's :class:`projectors.moe.Routing`."""
        self.shared = routing.shared
        for kind, counts in routing.counts.items():
            c = [float(v) for v in counts.cpu()]
            for store in (self.window, self.total):
                store[kind] = [a + b for a, b in zip(store[kind], c)] if kind in store else c
        self.losses.append((float(routing.balance.detach()), float(routing.z.detach())))

    @staticmethod
    def _fractions(store: dict[str, list[float]], shared: bool) -> dict[str, list[float]]:
        rows = dict(store)
        if shared and len(rows) > 1:
            rows["all"] = [sum(v) for v in zip(*store.values())]
        return {k: [c / max(sum(v), 1.0) for c in v] for k, v in rows.items()}

    def record(self) -> dict:
        """``expert_load`` ({modality: fractions}), ``expert_tokens`` (the counts behind them), ``moe_balance_loss``
        and ``moe_z_loss`` since the last call; empty without MoE projectors."""
        if not self.window:
            return {}
        out = {"expert_load": self._fractions(self.window, self.shared),
               "expert_tokens": {k: [round(c) for c in v] for k, v in self.window.items()},
               "moe_balance_loss": sum(b for b, _ in self.losses) / len(self.losses),
               "moe_z_loss": sum(z for _, z in self.losses) / len(self.losses)}
        self.window, self.losses = {}, []
        return out

    def totals(self) -> dict | None:
        """``{"fractions": {modality: [...]}, "tokens": {modality: n}}`` since this object was made, or None
        without MoE. ``tokens`` counts routed (token, slot) pairs: k per real token."""
        if not self.total:
            return None
        return {"fractions": self._fractions(self.total, self.shared),
                "tokens": {k: round(sum(v)) for k, v in self.total.items()}}

    @classmethod
    def from_metrics(cls, metrics_path: Path) -> "ExpertLoad":
        """The counts of every line of a run's ``metrics.jsonl`` (so a resumed run's totals cover all its steps)."""
        load = cls()
        for ln in metrics_path.read_text().splitlines():
            row = json.loads(ln) if ln.strip() else {}
            for kind, counts in (row.get("expert_tokens") or {}).items():
                load.total[kind] = [a + b for a, b in zip(load.total[kind], counts)] if kind in load.total else counts
            load.shared = load.shared or "all" in (row.get("expert_load") or {})
        return load


def plot_expert_load(metrics_path: Path, out_png: Path) -> Path | None:
    """Per-expert load (fraction of routed tokens) against the step, one panel per modality; None without
    matplotlib or without MoE records."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [json.loads(ln) for ln in metrics_path.read_text().splitlines() if ln.strip()]
    rows = [r for r in rows if r.get("expert_load")]
    if not rows:
        return None
    kinds = list(rows[-1]["expert_load"])
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.5 * len(kinds), 3.5), dpi=100, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        have = [r for r in rows if kind in r["expert_load"]]
        steps = [r["step"] for r in have]
        for e in range(len(have[0]["expert_load"][kind])):
            ax.plot(steps, [r["expert_load"][kind][e] for r in have], lw=1.2, label=f"expert {e}")
        ax.axhline(0.05, color="grey", ls="--", lw=0.8)
        ax.set_title(kind)
        ax.set_xlabel("optimizer step")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("fraction of routed tokens")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
    return out_png
