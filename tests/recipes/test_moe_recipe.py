"""The MoE recipe: merged image + speech data, the shared-MoE and dense configs at equal active parameters,
and its config.ci.json generating, training and evaluating end to end on the tiny models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from multimodal.evaluate import main as eval_main
from multimodal.train import train
from multimodal.train_config import TrainConfig
from projectors import create_projector
from recipes.moe import make_data

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "moe"
WIDTHS = {"image": 1280, "audio": 384}
"""Output widths of ``medany-lite0`` and ``medany-whisper`` (tiny.en), the recipe's encoders; SmolLM2-135M is 576."""
LLM_WIDTH = 576


def _active(cfg: TrainConfig, kind: str) -> int:
    proj = create_projector(cfg.projector_for(kind), WIDTHS[kind], LLM_WIDTH, **cfg.projector_kwargs.get(kind, {}))
    if hasattr(proj, "active_parameters"):
        return proj.active_parameters()
    return sum(p.numel() for p in proj.parameters())


@pytest.mark.parametrize("name", ["config.json", "config.2x1.json"])
def test_moe_and_dense_configs_differ_only_in_the_projectors_at_equal_active_parameters(name):
    moe, dense = (TrainConfig.from_file(RECIPE / n) for n in (name, "config.dense.json"))
    assert moe.share_projector and not dense.share_projector
    same = {k: v for k, v in moe.to_dict().items() if k not in {"image_projector", "audio_projector", "output_dir",
                                                                 "projector_kwargs", "share_projector"}}
    assert same == {k: dense.to_dict()[k] for k in same}
    for kind in WIDTHS:  # each token passes through as many parameters in both designs (within 5%)
        assert abs(_active(moe, kind) / _active(dense, kind) - 1) < 0.05, kind


def test_ci_recipe_merges_both_modalities_trains_one_shared_projector_and_evaluates(tmp_path, capsys):
    data = tmp_path / "data"
    assert make_data.main([str(data), "--n-train", "6", "--n-eval", "4"]) == 0
    records = [json.loads(ln) for ln in (data / "train.jsonl").read_text().splitlines()]
    assert sum("image" in r for r in records) == 4 and sum("audio" in r for r in records) == 2
    assert all((data / (r.get("image") or r.get("audio"))).is_file() for r in records)

    cfg = TrainConfig.from_file(RECIPE / "config.ci.json").to_dict()
    cfg.update(llm="tiny-random", image_encoder="tiny_vit", audio_encoder="tiny_whisper",
               data=str(data / "train.jsonl"), eval_data=str(data / "eval.jsonl"), output_dir=str(tmp_path / "run"),
               feature_cache_dir=str(tmp_path / "features"))
    config = tmp_path / "config.json"
    config.write_text(json.dumps(cfg))
    metrics = train(TrainConfig.from_file(config))
    assert metrics["steps"] == 2 and math.isfinite(metrics["final_loss"]) and metrics["expert_load"]
    capsys.readouterr()
    assert eval_main([str(config), "--out", str(tmp_path / "eval.json")]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["samples"] == 4 and math.isfinite(result["wer"]) and "modality" in result["field_accuracy"]
    assert set(result["groups"]) == {"unseen_scan", "seen_scan", "unseen_sentence", "unseen_voice"}
    held_out = result["expert_load"]["fractions"]  # each expert's share of the held-out tokens
    assert set(held_out) == {"image", "audio", "all"} and all(sum(v) == pytest.approx(1.0) for v in held_out.values())
