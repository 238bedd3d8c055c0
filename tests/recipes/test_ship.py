"""Shipping a recipe run: weights copied as they are, manifest with provenance and metrics, checked on load."""

import json
from pathlib import Path

import pytest

from multimodal.errors import ModelLoadError
from projectors import create_projector, load_projector, save_projector
from recipes.ship import ship

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({"recipe": "image", "train": 8, "seed": 0}))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"data": "data/train.jsonl"}))
    run = tmp_path / "run"
    save_projector(create_projector("linear", 8, 16), run / "image_projector", encoder="tiny_vit", llm="tiny-random",
                   data={"file": "train.jsonl", "sha256": "ab" * 32})
    (run / "final_metrics.json").write_text(json.dumps({
        "steps": 3, "first_loss": 5.0, "final_loss": 1.0, "train_s": 2.0, "bf16": False,
        "eval": {"loss": 1.2, "field_accuracy": {"modality": 0.75}, "examples": [{"id": "x"}]}}))
    (tmp_path / "baseline.json").write_text(json.dumps({"loss": 5.1, "field_accuracy": {"modality": 0.0}}))
    return run, config, tmp_path / "baseline.json"


def test_ship_copies_weights_and_writes_the_manifest(run, tmp_path):
    run_dir, config, baseline = run
    dest = ship(run_dir, "tiny-scans", recipe="image", config=str(config), commands=["make it"], auto=True,
                applies_to="scans", reason="measured", baseline=baseline, dest_root=tmp_path / "weights")
    proj, cfg = load_projector(dest)
    source_proj, source_cfg = load_projector(run_dir / "image_projector")
    assert cfg["sha256"] == source_cfg["sha256"] and cfg["applies_to"] == "scans"
    m = json.loads((dest / "manifest.json").read_text())
    assert (m["name"], m["kind"], m["encoder"], m["llm"], m["auto"]) == ("tiny-scans", "image", "tiny_vit",
                                                                         "tiny-random", True)
    assert m["sha256"] == cfg["sha256"] and m["size_bytes"] == (dest / "projector.safetensors").stat().st_size
    assert m["data"]["manifest"]["train"] == 8 and m["data"]["train"]["sha256"] == "ab" * 32
    assert "MIT" in m["data"]["licence"]
    assert m["metrics"]["held_out"] == {"loss": 1.2, "field_accuracy": {"modality": 0.75}}  # no examples
    assert m["metrics"]["untrained_baseline"]["loss"] == 5.1 and m["metrics"]["training"]["steps"] == 3
    assert m["recipe"] == {"name": "image", "config": str(config), "commands": ["make it"]}


def test_ship_refuses_weights_that_do_not_match_their_checksum(run, tmp_path):
    run_dir, config, _ = run
    weights = run_dir / "image_projector" / "projector.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ModelLoadError, match="do not match the sha256"):
        ship(run_dir, "bad", recipe="image", config=str(config), commands=[], auto=False, applies_to="any",
             reason="", dest_root=tmp_path / "weights")


def test_recipe_configs_start_from_runs_they_reproduce_not_from_shipped_weights():
    """A recipe that initialised from projectors/weights would fine-tune the shipped result again, not reproduce it."""
    from multimodal.train_config import TrainConfig
    from projectors.shipped import WEIGHTS_DIR

    configs = sorted((REPO / "recipes").glob("*/config*.json"))
    assert configs
    for path in configs:
        cfg = TrainConfig.from_file(path)
        for init in (cfg.init_image_projector, cfg.init_audio_projector):
            assert init is None or WEIGHTS_DIR.resolve() not in Path(init).resolve().parents, path.name
