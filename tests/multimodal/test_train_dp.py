"""Differentially private projector training (``TrainConfig.dp``): config, accounting, clipping, resume.

Tiny random models on CPU (tiny-random LLM, tiny_vit encoder); each run takes seconds.
"""

import contextlib
import json
import math

import pytest
import torch
from torch import nn

from multimodal.data import collate
from multimodal.errors import InputError, MedAnyError
from multimodal.parallel import DistEnv
from multimodal.train import setup, train
from multimodal.train_config import DPConfig, TrainConfig
from tests.multimodal.train_helpers import make_image_set, read_metrics, write_config

pytest.importorskip("opacus")

DP = {"epsilon": 8.0, "delta": 1e-3, "max_grad_norm": 1.0}
MANIFEST_KEYS = {"epsilon", "target_epsilon", "delta", "max_grad_norm", "noise_multiplier", "sample_rate",
                 "expected_batch_size", "steps", "accountant", "sampling", "unit"}


def _cfg(tmp_path, **kw) -> TrainConfig:
    make_image_set(tmp_path)
    return TrainConfig.from_file(write_config(tmp_path, **kw))


# --- config --------------------------------------------------------------------------------


@pytest.mark.parametrize("dp, message", [
    ("yes", "dp must be a mapping"),
    ({"epsilon": 1.0, "delta": 1e-5}, "missing: max_grad_norm"),
    ({**DP, "sigma": 1.0}, "Unknown dp option"),
    ({**DP, "epsilon": 0}, "dp.epsilon must be a positive"),
    ({**DP, "epsilon": float("inf")}, "dp.epsilon must be a positive"),
    ({**DP, "epsilon": "8"}, "dp.epsilon must be a positive"),
    ({**DP, "delta": 0.0}, "dp.delta must be between 0 and 1"),
    ({**DP, "delta": 1.0}, "dp.delta must be between 0 and 1"),
    ({**DP, "max_grad_norm": -1}, "dp.max_grad_norm must be a positive"),
    ({**DP, "max_grad_norm": True}, "dp.max_grad_norm must be a positive"),
    ({**DP, "accountant": "moments"}, "dp.accountant must be one of rdp, prv"),
    ({**DP, "seed": -1}, "dp.seed must be a non-negative integer"),
    ({**DP, "seed": 1.5}, "dp.seed must be a non-negative integer"),
])
def test_config_rejects_bad_dp_settings(tmp_path, dp, message):
    with pytest.raises(InputError, match=message):
        TrainConfig.from_file(write_config(tmp_path, dp=dp))


def test_config_refuses_dp_with_lora_and_round_trips(tmp_path):
    with pytest.raises(InputError, match="projectors only"):
        TrainConfig.from_file(write_config(tmp_path, stage=2, lora=True, dp=DP))
    cfg = TrainConfig.from_file(write_config(tmp_path, dp=DP))
    assert cfg.dp == DPConfig(8.0, 1e-3, 1.0, "rdp")
    assert json.loads(cfg.to_json())["dp"] == {**DP, "accountant": "rdp", "seed": None}
    assert TrainConfig.from_dict(json.loads(cfg.to_json())).dp == cfg.dp
    assert TrainConfig.from_file(write_config(tmp_path, dp=None)).dp is None


def test_dp_refuses_several_processes(tmp_path):
    cfg = _cfg(tmp_path, dp=DP)
    with pytest.raises(MedAnyError, match="one process"):
        setup(cfg, DistEnv(rank=0, world=2), resume=False)


# --- accounting -----------------------------------------------------------------------------


def test_epsilon_is_logged_every_step_rises_and_lands_on_the_target(tmp_path):
    cfg = _cfg(tmp_path, dp=DP, max_steps=6, batch_size=2, save_every=100)
    metrics = train(cfg)
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == list(range(1, 7))
    eps = [r["epsilon"] for r in rows]
    assert all(b > a > 0 for a, b in zip(eps, eps[1:])), eps  # every step spends budget, empty batches too
    # the noise was calibrated for exactly these 6 steps: the last one reaches the target (Opacus's tolerance)
    assert DP["epsilon"] - 0.05 <= eps[-1] <= DP["epsilon"]
    assert metrics["dp"]["epsilon"] == eps[-1]
    assert all(r["grad_norm"] is None and 0 <= r["clipped_fraction"] <= 1 for r in rows)
    assert all(r["batch_size"] == int(r["batch_size"]) >= 0 for r in rows)


def test_projector_manifest_and_final_metrics_record_the_guarantee(tmp_path):
    from projectors import load_projector

    cfg = _cfg(tmp_path, dp={**DP, "accountant": "prv"}, max_steps=4, batch_size=2, save_every=2)
    train(cfg)
    run = tmp_path / "run"
    _, meta = load_projector(run / "image_projector")
    dp = meta["dp"]
    assert set(dp) >= MANIFEST_KEYS
    assert dp["accountant"] == "prv" and dp["sampling"] == "poisson" and dp["unit"] == "conversation"
    assert dp["randomness"] == "secret" and "secret_seed" not in dp
    assert dp["steps"] == 4 and dp["sample_rate"] == 0.5 and dp["expected_batch_size"] == 2  # 2 of 4 images
    assert dp["delta"] == DP["delta"] and dp["max_grad_norm"] == DP["max_grad_norm"] and dp["noise_multiplier"] > 0
    assert dp["epsilon"] <= dp["target_epsilon"] == DP["epsilon"]
    assert json.loads((run / "final_metrics.json").read_text())["dp"] == dp
    # nothing computed from the training data without noise: no training losses, no dataset hash to test guesses
    assert "metrics" not in meta and meta["data"] == {"file": "train.jsonl", "sha256": None}
    _, mid = load_projector(run / "checkpoints/step-00000002/image_projector")
    assert mid["dp"]["steps"] == 2 and mid["dp"]["epsilon"] < dp["epsilon"]  # checkpoints say what they spent


def test_resume_continues_the_accountant(tmp_path, monkeypatch):
    import multimodal.train as train_mod

    make_image_set(tmp_path)
    over = dict(dp={**DP, "seed": 7}, max_steps=8, batch_size=2, save_every=3, keep_last=3)
    ref = train(TrainConfig.from_file(write_config(tmp_path, output_dir="ref", **over)))
    cfg_path = write_config(tmp_path, output_dir="crashed", **over)

    class Crash(Exception):
        pass

    real_save = train_mod.save_run

    def save_then_crash(run, step):
        real_save(run, step)
        if step == 6:
            raise Crash

    monkeypatch.setattr(train_mod, "save_run", save_then_crash)
    with pytest.raises(Crash):
        train(TrainConfig.from_file(cfg_path))
    monkeypatch.setattr(train_mod, "save_run", real_save)
    state = json.loads((tmp_path / "crashed/checkpoints/step-00000006/trainer_state.json").read_text())
    history = state["dp"]["accountant"]["history"]
    assert state["dp"]["accountant"]["mechanism"] == "rdp" and sum(h[2] for h in history) == 6

    resumed = train(TrainConfig.from_file(cfg_path), resume=True)
    assert resumed["resumed_from"] == 6
    got, want = read_metrics(tmp_path / "crashed"), read_metrics(tmp_path / "ref")
    assert [r["epsilon"] for r in got] == [r["epsilon"] for r in want]
    assert resumed["dp"]["epsilon"] == ref["dp"]["epsilon"]
    assert [r["step_loss"] for r in got] == [r["step_loss"] for r in want]  # same batches, same noise
    assert [r["batch_size"] for r in got] == [r["batch_size"] for r in want]


def test_batches_and_noise_are_secret_unless_seeded(tmp_path):
    make_image_set(tmp_path)
    runs = {}
    for name in ("a", "b"):
        train(TrainConfig.from_file(write_config(tmp_path, output_dir=name, dp=DP, max_steps=3, batch_size=2,
                                                 save_every=3)))
        runs[name] = read_metrics(tmp_path / name)
        state = json.loads((tmp_path / name / "checkpoints/step-00000003/trainer_state.json").read_text())
        assert isinstance(state["dp"]["secret_seed"], int) and state["dp"]["noise_rng"]  # what resuming needs
        shipped = (tmp_path / name / "image_projector/projector.json").read_text()
        assert str(state["dp"]["secret_seed"]) not in shipped
    assert [r["step_loss"] for r in runs["a"]] != [r["step_loss"] for r in runs["b"]]
    assert [r["epsilon"] for r in runs["a"]] == [r["epsilon"] for r in runs["b"]]  # the guarantee is the same


def test_resume_refuses_changed_privacy_settings(tmp_path):
    cfg = _cfg(tmp_path, dp=DP, max_steps=3, batch_size=2, save_every=3)
    train(cfg)
    with pytest.raises(MedAnyError, match="privacy accounting"):
        train(_cfg(tmp_path, dp={**DP, "epsilon": 3.0}, max_steps=6, batch_size=2), resume=True)
    with pytest.raises(MedAnyError, match="differentially private run"):
        train(_cfg(tmp_path, max_steps=6, batch_size=2), resume=True)


# --- per-sample gradients and clipping ---------------------------------------------------


def _two_image_set(root):
    """The colour set plus one conversation holding two images (the privacy unit is the conversation)."""
    path = make_image_set(root)
    lines = path.read_text().splitlines()
    lines.insert(1, json.dumps({"id": "pair", "image": ["red.png", "blue.png"],
                             "conversations": [{"from": "human", "value": "<image>\n<image>\nWhich colours?"},
                                               {"from": "gpt", "value": "Colours: red, blue"}]}))
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("projector", ["mlp2x_gelu", "resampler"])  # Opacus's Linear sampler / torch.func
def test_per_sample_gradients_are_exact_and_clipping_bounds_them(tmp_path, projector):
    _two_image_set(tmp_path)
    kw = {"image": {"num_queries": 4, "heads": 2}} if projector == "resampler" else {}
    clip = 1e-3  # far below every per-sample norm: each conversation's gradient is clipped
    cfg = TrainConfig.from_file(write_config(tmp_path, image_projector=projector, projector_kwargs=kw,
                                             dp={**DP, "max_grad_norm": clip}, batch_size=5))
    run = setup(cfg, DistEnv(), resume=False)
    private, model = run.private, run.model
    batch = collate([run.dataset[i] for i in range(len(run.dataset))], model.tokenizer.pad_token_id)
    losses = private.backward(model, batch, contextlib.nullcontext)
    assert losses.shape == (5,)
    got = private.grad_samples()  # one [B, *P] tensor per projector parameter

    for hooks in private.hooks:  # the reference: each conversation on its own, plain autograd
        hooks.disable_hooks()
    params = private.params
    for i in range(5):
        one = collate([run.dataset[i]], model.tokenizer.pad_token_id)
        loss = model(input_ids=one["input_ids"], attention_mask=one["attention_mask"], labels=one["labels"],
                     media=one["media"]).loss
        assert float(loss.detach()) == pytest.approx(float(losses[i]), rel=1e-5)
        ref = torch.autograd.grad(loss, params)
        for g, r in zip(got, ref):
            assert float((g[i] - r).norm()) <= 1e-4 * float(r.norm()) + 1e-7
    for hooks in private.hooks:
        hooks.enable_hooks()

    norms = torch.stack([g.flatten(1).norm(dim=1) for g in got]).norm(dim=0)  # [B]
    assert bool((norms > clip).all())
    private.optimizer.noise_multiplier = 0.0  # isolate the clipping: sum of clipped per-sample grads / E[B]
    before = [p.detach().clone() for p in params]
    stats = private.step()
    assert stats["clipped_fraction"] == 1.0 and stats["batch_size"] == 5
    factor = (clip / (norms + 1e-6)).clamp(max=1.0)  # Opacus's clipping rule
    for p, g in zip(params, got):
        want = torch.einsum("i,i...->...", factor, g) / private.expected_batch_size
        torch.testing.assert_close(p.grad, want, rtol=1e-4, atol=1e-9)
    total = torch.cat([p.grad.flatten() for p in params]).norm() * private.expected_batch_size
    assert float(total) <= 5 * clip * (1 + 1e-4)  # each conversation moved the sum by at most C
    assert any(not torch.equal(p, b) for p, b in zip(params, before))  # and the optimizer stepped
    private.close()
    assert not any(hasattr(p, "grad_sample") for p in params)


class _Centring(nn.Module):
    """A projector whose items interact (each is centred on the batch mean): no per-sample gradient exists."""

    def __init__(self):
        super().__init__()
        self.in_dim, self.proj = 8, nn.Linear(8, 8)

    def forward(self, x):
        return self.proj(x - x.mean(0, keepdim=True))


@pytest.mark.parametrize("projector", [_Centring(), nn.Sequential(nn.BatchNorm1d(4), nn.Linear(8, 8))])
def test_projectors_without_exact_per_sample_gradients_are_refused(projector):
    from multimodal.privacy import PrivacyError, per_sample_hooks

    projector.in_dim = 8
    projector.train()
    with pytest.raises(PrivacyError, match="image projector .* cannot be trained with differential privacy"):
        per_sample_hooks("image", projector)
    assert not any(hasattr(p, "grad_sample") for p in projector.parameters())  # nothing left attached


def test_noise_is_added_with_the_calibrated_scale(tmp_path):
    cfg = _cfg(tmp_path, dp=DP, batch_size=2, max_steps=6)
    run = setup(cfg, DistEnv(), resume=False)
    private = run.private
    stats = private.step()  # nothing accumulated: an empty Poisson batch
    assert stats["batch_size"] == 0 and stats["clipped_fraction"] == 0.0
    noise = torch.cat([p.grad.flatten() for p in private.params]) * private.expected_batch_size
    std = private.noise_multiplier * DP["max_grad_norm"]
    assert float(noise.std()) == pytest.approx(std, rel=0.05)  # N(0, (sigma C)^2) on every coordinate
    assert private.epsilon() > 0


def test_poisson_batches_are_seeded_resumable_and_of_the_expected_size(tmp_path):
    from multimodal.privacy import PoissonBatches

    full = list(PoissonBatches(200, 0.05, seed=3, start=0, stop=400))
    assert full == list(PoissonBatches(200, 0.05, seed=3, start=0, stop=400))
    assert list(PoissonBatches(200, 0.05, seed=3, start=150, stop=400)) == full[150:]
    assert full != list(PoissonBatches(200, 0.05, seed=4, start=0, stop=400))
    sizes = [len(b) for b in full]
    assert abs(sum(sizes) / len(sizes) - 10) < 0.5 and min(sizes) < 6 < 14 < max(sizes)  # Binomial(200, 0.05)
    assert all(len(set(b)) == len(b) and all(0 <= i < 200 for i in b) for b in full)


# --- without dp ------------------------------------------------------------------------------


def test_without_dp_nothing_privacy_related_is_written(tmp_path):
    from projectors import load_projector

    cfg = _cfg(tmp_path, max_steps=2, save_every=2)
    assert cfg.dp is None
    metrics = train(cfg)
    run = tmp_path / "run"
    assert "dp" not in metrics and "dp" not in load_projector(run / "image_projector")[1]
    assert "dp" not in json.loads((run / "checkpoints/step-00000002/trainer_state.json").read_text())
    rows = read_metrics(run)
    assert all("epsilon" not in r and r["grad_norm"] is not None and math.isfinite(r["loss"]) for r in rows)
