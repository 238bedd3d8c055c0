import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from multimodal.errors import InputError
from multimodal.train import main, train
from multimodal.train_config import TrainConfig
from tests.multimodal.train_helpers import make_image_set, read_metrics, write_config

REPO = Path(__file__).resolve().parents[2]


def _cfg(tmp_path, **kw) -> TrainConfig:
    make_image_set(tmp_path)
    return TrainConfig.from_file(write_config(tmp_path, **kw))


def test_a_few_steps_reduce_the_loss_on_a_tiny_overfit_set(tmp_path):
    cfg = _cfg(tmp_path, batch_size=4, max_steps=25, lr_projector=2e-2, schedule="constant", save_every=100)
    metrics = train(cfg)
    losses = [r["step_loss"] for r in read_metrics(tmp_path / "run")]
    assert len(losses) == 25 and metrics["first_loss"] == losses[0]
    # A frozen random LLM can only be steered through the projected tokens, so the
    # floor is high; the drop is still far beyond step-to-step noise.
    assert sum(losses[-3:]) / 3 < losses[0] - 0.1, losses
    assert losses[-1] <= min(losses[:5]), losses


def test_outputs_checkpoints_and_keep_last(tmp_path):
    from projectors import load_projector

    cfg = _cfg(tmp_path, max_steps=7, save_every=2, keep_last=2, plot=True)
    train(cfg)
    run = tmp_path / "run"
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["step-00000006", "step-00000007"]  # keep_last=2, no temp folders left behind
    last = run / "checkpoints" / "step-00000007"
    state = torch.load(last / "training_state.pt", weights_only=True)
    assert set(state) == {"optimizer", "scheduler", "rng"} and len(state["rng"]) == 1
    assert json.loads((last / "trainer_state.json").read_text())["step"] == 7
    proj, meta = load_projector(run / "image_projector")
    assert meta["encoder"] == "tiny_vit" and meta["stage"] == 1 and meta["data"]["file"] == "train.jsonl"
    final = load_file(str(last / "trainable.safetensors"))
    shared = load_file(str(run / "image_projector" / "projector.safetensors"))
    assert {f"projectors.image.{k}" for k in shared} == set(final)  # only the projector trains in stage 1
    assert all(torch.equal(shared[k], final[f"projectors.image.{k}"]) for k in shared)
    assert all(torch.equal(v, proj.state_dict()[k]) for k, v in shared.items())
    assert (run / "loss.png").stat().st_size > 1000
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == list(range(1, 8))
    assert all(r["samples_per_s"] > 0 and r["eta_s"] >= 0 for r in rows)


def test_resume_after_kill_9_is_bit_for_bit(tmp_path):
    make_image_set(tmp_path)
    over = dict(max_steps=120, save_every=5, keep_last=2)
    ref_cfg = TrainConfig.from_file(write_config(tmp_path, output_dir="ref", **over))
    cfg_path = write_config(tmp_path, output_dir="killed", **over)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "multimodal.train", str(cfg_path)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpts.is_dir() and any(p.name.startswith("step-") for p in ckpts.iterdir()):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    killed_at = max(int(p.name[5:]) for p in ckpts.iterdir() if p.name.startswith("step-"))
    assert killed_at < 120

    resumed = train(TrainConfig.from_file(cfg_path), resume=True)
    assert resumed["resumed_from"] == killed_at
    train(ref_cfg)
    ref = [r["step_loss"] for r in read_metrics(tmp_path / "ref")]
    got = [r["step_loss"] for r in read_metrics(tmp_path / "killed")]
    assert got[killed_at] == ref[killed_at]  # the next loss after the kill, bit-for-bit
    assert got == ref
    wa = load_file(str(tmp_path / "ref/image_projector/projector.safetensors"))
    wb = load_file(str(tmp_path / "killed/image_projector/projector.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


WORKER = """
import os, sys
from safetensors.torch import save_file
from multimodal.checkpoint import trainable_state
from multimodal.train import train
from multimodal.train_config import TrainConfig

def dump(model):
    save_file(trainable_state(model), os.path.join(sys.argv[2], f"rank{os.environ['RANK']}.safetensors"))
    sharded = sum(type(p).__name__ == "DTensor" for p in model.llm.parameters())
    with open(os.path.join(sys.argv[2], f"rank{os.environ['RANK']}.sharded"), "w") as f:
        f.write(str(sharded))

metrics = train(TrainConfig.from_file(sys.argv[1]), on_end=dump)
assert metrics["world_size"] == 2
"""


def _torchrun(tmp_path, cfg):
    (tmp_path / "worker.py").write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(tmp_path / "worker.py"), str(cfg), str(tmp_path)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    r0, r1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1))
    assert r0.keys() == r1.keys() and all(torch.equal(r0[k], r1[k]) for k in r0)  # replicas never drift
    return json.loads((tmp_path / "run/final_metrics.json").read_text())


def test_two_process_gloo_run_keeps_ranks_identical(tmp_path):
    cfg = write_config(tmp_path, batch_size=1, max_steps=4, save_every=2)
    make_image_set(tmp_path)
    metrics = _torchrun(tmp_path, cfg)
    ck = torch.load(tmp_path / "run/checkpoints/step-00000004/training_state.pt", weights_only=True)
    assert len(ck["rng"]) == 2
    assert metrics["world_size"] == 2 and metrics["steps"] == 4 and metrics["parallel"] == "ddp"


def test_fsdp_shards_the_llm_and_trains_the_same_projector_as_ddp(tmp_path):
    make_image_set(tmp_path)
    runs = {}
    for mode in ("ddp", "fsdp"):
        root = tmp_path / mode
        root.mkdir()
        for f in tmp_path.glob("*.png"):
            (root / f.name).write_bytes(f.read_bytes())
        (root / "train.jsonl").write_bytes((tmp_path / "train.jsonl").read_bytes())
        cfg = write_config(root, batch_size=1, max_steps=3, save_every=10, parallel=mode, eval_data="train.jsonl",
                           eval_max_new_tokens=4)
        runs[mode] = (_torchrun(root, cfg), load_file(str(root / "run/image_projector/projector.safetensors")))
    (ddp, w_ddp), (fsdp, w_fsdp) = runs["ddp"], runs["fsdp"]
    assert fsdp["parallel"] == "fsdp" and fsdp["eval"]["n"] == 4  # the sharded LLM evaluated on both ranks
    sharded = {mode: int((tmp_path / mode / "rank0.sharded").read_text()) for mode in runs}
    assert sharded["ddp"] == 0 and sharded["fsdp"] > 0  # every LLM weight but the embedding table is a shard
    for k in w_ddp:  # same data, same averaged gradients: only float summation order differs
        torch.testing.assert_close(w_fsdp[k], w_ddp[k], rtol=1e-4, atol=1e-6)
    assert fsdp["final_loss"] == pytest.approx(ddp["final_loss"], rel=1e-4)


def test_stage2_trains_lora_adapters(tmp_path):
    pytest.importorskip("peft")
    cfg = _cfg(tmp_path, stage=2, lora=True, lora_r=4, max_steps=3, lr_lora=1e-2, save_every=10)
    train(cfg)
    run = tmp_path / "run"
    adapters = load_file(str(run / "lora" / "adapter_model.safetensors"))
    assert adapters and all("lora_" in k for k in adapters)
    assert any(v.abs().sum() > 0 for k, v in adapters.items() if "lora_B" in k)  # B starts at zero
    trainable = load_file(str(run / "checkpoints/step-00000003/trainable.safetensors"))
    assert any(k.startswith("projectors.") for k in trainable) and any("lora_" in k for k in trainable)


def test_refuses_to_train_when_no_token_is_supervised(tmp_path, monkeypatch, capsys):
    import multimodal.backbone as backbone

    real = backbone.load_llm

    def broken_template(name, **kw):
        model, tok, info = real(name, **kw)
        tok.chat_template = ("{% for m in messages %}{% if m['role'] != 'assistant' %}{{ m['content'] }}"
                             "{% endif %}{% endfor %}")
        return model, tok, info

    monkeypatch.setattr(backbone, "load_llm", broken_template)
    make_image_set(tmp_path)
    assert main([str(write_config(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "Refusing to train" in err and "line 1" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_config_rejects_unknown_options_and_resolves_paths(tmp_path):
    path = write_config(tmp_path, bogus=1)
    with pytest.raises(Exception, match="bogus"):
        TrainConfig.from_file(path)
    cfg = TrainConfig.from_file(write_config(tmp_path))
    assert Path(cfg.data) == tmp_path / "train.jsonl" and Path(cfg.output_dir) == tmp_path / "run"
    (tmp_path / "c.yaml").write_text("data: train.jsonl\nimage_encoder: tiny_vit\nstage: 2\nlora: true\n")
    assert TrainConfig.from_file(tmp_path / "c.yaml").lora is True
    with pytest.raises(InputError, match="parallel must be one of"):
        TrainConfig.from_file(write_config(tmp_path, parallel="zero3"))
    with pytest.raises(InputError, match="LoRA adapters train under parallel='ddp'"):
        TrainConfig.from_file(write_config(tmp_path, stage=2, lora=True, parallel="fsdp"))
