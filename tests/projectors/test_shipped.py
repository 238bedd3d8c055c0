"""Shipped projectors: found by name or by the stack they were trained for, checked on load."""

import json

import pytest

import projectors.shipped as shipped_mod
from multimodal.config import StackConfig
from multimodal.errors import ModelLoadError
from multimodal.pipeline import Assistant
from projectors import create_projector, load_projector, resolve_projector, save_projector, shipped_projectors


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    from encoders import create_encoder

    for name, auto in (("tiny-image", True), ("tiny-image-opt-in", False)):
        proj = create_projector("mlp2x_gelu", create_encoder("tiny_vit").out_dim, 64)
        d = save_projector(proj, tmp_path / name, encoder="tiny_vit", llm="tiny-random")
        manifest = {"encoder": "tiny_vit", "llm": "tiny-random", "auto": auto}
        (d / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(shipped_mod, "WEIGHTS_DIR", tmp_path)
    return tmp_path


def test_auto_picks_the_shipped_projector_marked_auto_for_this_stack(weights_dir):
    assert set(shipped_projectors()) == {"tiny-image", "tiny-image-opt-in"}
    assert resolve_projector("auto", encoder="tiny_vit", llm="tiny-random") == weights_dir / "tiny-image"
    assert resolve_projector("auto", encoder="tiny_vit", llm="other-llm") is None
    assert resolve_projector("auto", encoder="timm:resnet18", llm="tiny-random") is None


def test_names_directories_and_none(weights_dir):
    assert resolve_projector("tiny-image-opt-in", encoder="x", llm="y") == weights_dir / "tiny-image-opt-in"
    assert resolve_projector(str(weights_dir / "tiny-image"), encoder="x", llm="y") == weights_dir / "tiny-image"
    for off in (None, "", "none", "None"):
        assert resolve_projector(off, encoder="tiny_vit", llm="tiny-random") is None
    with pytest.raises(ModelLoadError, match="neither a directory nor a shipped projector.*tiny-image"):
        resolve_projector("no-such-projector", encoder="tiny_vit", llm="tiny-random")


def test_the_stack_loads_the_auto_projector_and_refuses_a_mismatched_one(weights_dir, tmp_path_factory):
    tiny = dict(llm="tiny-random", vision="tiny_vit", speech="")
    assert "image" in Assistant.load(StackConfig(**tiny)).model.projectors
    assert "image" not in Assistant.load(StackConfig(**tiny, image_projector="none")).model.projectors
    wrong = save_projector(create_projector("linear", 7, 64), tmp_path_factory.mktemp("w") / "p",
                           encoder="other", llm="tiny-random")
    with pytest.raises(ModelLoadError, match="maps 7 -> 64 features.*needs \\d+ \\(tiny_vit\\)"):
        Assistant.load(StackConfig(**tiny, image_projector=str(wrong)))


def test_every_shipped_projector_loads_and_matches_its_manifest():
    from pathlib import Path

    for name, manifest in shipped_projectors().items():
        proj, cfg = load_projector(Path(shipped_mod.WEIGHTS_DIR) / name)  # checks the sha256 of the weights
        assert manifest["sha256"] == cfg["sha256"]
        assert (manifest["encoder"], manifest["llm"]) == (cfg["encoder"], cfg["llm"])
        assert manifest["recipe"] and manifest["data"] and manifest["metrics"]
