"""Training with MoE projectors: auxiliary losses, per-expert load in metrics.jsonl and its plot, one projector
shared by images and speech (saved per modality, reloaded, resumed), and the config checks."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from multimodal.errors import InputError
from multimodal.train import train
from multimodal.train_config import TrainConfig
from tests.multimodal.train_helpers import make_audio_set, make_image_set, read_metrics, write_config

SHARED = dict(data="mixed.jsonl", audio_encoder="tiny_whisper", image_projector="moe_mlp4x2",
              audio_projector="moe_mlp4x2", share_projector=True,
              projector_kwargs={"image": {"width": 24}, "audio": {"width": 24, "stack": 4}})


def _mixed(tmp_path, **overrides) -> TrainConfig:
    img, aud = make_image_set(tmp_path), make_audio_set(tmp_path)
    (tmp_path / "mixed.jsonl").write_text(img.read_text() + aud.read_text())
    return TrainConfig.from_file(write_config(tmp_path, **{**SHARED, **overrides}))


def test_shared_moe_projector_logs_expert_load_and_saves_one_projector_per_modality(tmp_path):
    from projectors import load_projector

    metrics = train(_mixed(tmp_path, max_steps=4, batch_size=4, plot=True))
    run = tmp_path / "run"
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for r in rows:
        assert r["moe_balance_loss"] >= 1.0 - 1e-5 and r["moe_z_loss"] > 0  # the balance loss is >= 1
        for kind, fractions in r["expert_load"].items():
            assert len(fractions) == 4 and sum(fractions) == pytest.approx(1.0), kind
    assert any({"image", "audio", "all"} <= set(r["expert_load"]) for r in rows)
    total = metrics["expert_load"]
    assert set(total["fractions"]) == {"image", "audio", "all"}
    for kind in ("image", "audio"):  # the run's totals are the sums of the logged counts
        assert total["tokens"][kind] == sum(sum(r["expert_tokens"].get(kind, [])) for r in rows)
    # every real token counted k=2 times; Whisper's padding frames are not counted
    assert total["tokens"]["audio"] < 3 * 1500 // 4 * 2 * 4
    assert (run / "expert_load.png").stat().st_size > 1000 and (run / "loss.png").is_file()
    image, image_cfg = load_projector(run / "image_projector")
    audio, audio_cfg = load_projector(run / "audio_projector")
    assert image_cfg["shared_experts"] == ["image", "audio"] and audio_cfg["kwargs"] == {"width": 24, "stack": 4}
    for name, value in image.core.state_dict().items():  # the two folders hold the same router and experts
        assert torch.equal(value, audio.core.state_dict()[name]), name
    ckpt = load_file(str(run / "checkpoints" / "step-00000004" / "trainable.safetensors"))
    assert not any(k.startswith("projectors.audio.core.") for k in ckpt)  # shared tensors stored once
    assert any(k.startswith("projectors.audio.adapter.") for k in ckpt)


def test_aux_loss_weights_reach_the_gradient(tmp_path):
    """The same run with and without the auxiliary losses: the same LM loss at step 1, different routers after."""
    from projectors import load_projector

    a = _mixed(tmp_path, max_steps=2, output_dir="with", moe_balance_weight=1.0, moe_z_weight=1.0)
    b = _mixed(tmp_path, max_steps=2, output_dir="without", moe_balance_weight=0.0, moe_z_weight=0.0)
    train(a)
    train(b)
    first = [read_metrics(tmp_path / d)[0]["step_loss"] for d in ("with", "without")]
    assert first[0] == pytest.approx(first[1], rel=1e-6)  # the logged loss is the LLM's alone
    ra, rb = (load_projector(tmp_path / d / "image_projector")[0].core.router.weight for d in ("with", "without"))
    assert not torch.allclose(ra, rb)


def test_resume_with_a_shared_projector_is_bit_for_bit(tmp_path):
    import shutil

    train(_mixed(tmp_path, max_steps=4, save_every=2, keep_last=2, output_dir="ref"))
    shutil.copytree(tmp_path / "ref" / "checkpoints" / "step-00000002", tmp_path / "cut/checkpoints/step-00000002")
    shutil.copy(tmp_path / "ref" / "metrics.jsonl", tmp_path / "cut" / "metrics.jsonl")  # cut back to step 2
    train(_mixed(tmp_path, max_steps=4, save_every=2, output_dir="cut"), resume=True)  # steps 3 and 4 only
    assert [r["expert_tokens"] for r in read_metrics(tmp_path / "cut")] == \
        [r["expert_tokens"] for r in read_metrics(tmp_path / "ref")]
    cut, ref_metrics = (json.loads((tmp_path / d / "final_metrics.json").read_text()) for d in ("cut", "ref"))
    assert cut["expert_load"] == ref_metrics["expert_load"]  # the whole run's load, though this process ran 2 steps
    ref = load_file(str(tmp_path / "ref/audio_projector/projector.safetensors"))
    got = load_file(str(tmp_path / "cut/audio_projector/projector.safetensors"))
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_moe_config_checks(tmp_path):
    make_image_set(tmp_path)
    with pytest.raises(InputError, match="share_projector"):
        TrainConfig.from_file(write_config(tmp_path, share_projector=True))
    with pytest.raises(InputError, match="moe_balance_weight"):
        TrainConfig.from_file(write_config(tmp_path, moe_balance_weight=-1))
    with pytest.raises(InputError, match="Differential privacy does not cover MoE"):
        TrainConfig.from_file(write_config(tmp_path, image_projector="moe_mlp4x1",
                                           dp={"epsilon": 3, "delta": 1e-5, "max_grad_norm": 1.0}))
    json.loads(write_config(tmp_path, image_projector="moe_mlp4x1").read_text())  # a plain MoE run is fine
    assert TrainConfig.from_file(write_config(tmp_path, image_projector="moe_mlp4x1")).moe_balance_weight == 0.01


def test_the_model_counts_only_real_tokens_in_the_expert_load():
    """Whisper pads every clip to 30 s; the padding frames are projected (and cut off) but not routed for the load."""
    from torch import nn

    from multimodal.model import MedAnyModel
    from projectors import create_projector

    proj = create_projector("moe_mlp4x1", 6, 8, stack=4)
    model = MedAnyModel(None, None, {"audio": nn.Identity()}, {"audio": proj})
    feats = model.encode("audio", torch.randn(2, 40, 6), valid_tokens=[8, 19])  # ceil(8/4) + ceil(19/4) = 7
    assert feats.shape == (7, 8) and int(proj.routing.tokens) == 7 and int(proj.routing.counts.sum()) == 7
    model.encode("audio", torch.randn(2, 40, 6))
    assert int(proj.routing.tokens) == 20
