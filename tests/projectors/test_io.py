
import pytest
import torch

from multimodal.errors import ModelLoadError
from projectors import create_projector, load_projector, save_projector


@pytest.mark.parametrize("name,kwargs", [("mlp2x_gelu", {}), ("resampler", {"num_queries": 3, "heads": 2}),
                                         ("concat4", {})])
def test_round_trip_is_exact(tmp_path, name, kwargs):
    proj = create_projector(name, 6, 8, **kwargs)
    save_projector(proj, tmp_path, encoder="tiny_vit", llm="tiny-random", data="unit test")
    loaded, cfg = load_projector(tmp_path)
    x = torch.randn(2, 8, 6)
    torch.testing.assert_close(loaded(x), proj(x), rtol=0, atol=0)
    assert cfg["encoder"] == "tiny_vit" and cfg["llm"] == "tiny-random" and cfg["data"] == "unit test"
    assert len(cfg["sha256"]) == 64


def test_tampered_weights_are_refused(tmp_path):
    save_projector(create_projector("linear", 2, 2), tmp_path, encoder="e", llm="l")
    weights = tmp_path / "projector.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="sha256"):
        load_projector(tmp_path)


def test_missing_projector_names_the_files(tmp_path):
    with pytest.raises(ModelLoadError, match="projector.json"):
        load_projector(tmp_path)


def test_loading_never_unpickles(tmp_path, monkeypatch):
    save_projector(create_projector("linear", 2, 2), tmp_path, encoder="e", llm="l")

    def forbidden(*args, **kwargs):
        raise AssertionError("load_projector must not call torch.load / pickle")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr("pickle.load", forbidden)
    monkeypatch.setattr("pickle.loads", forbidden)
    proj, cfg = load_projector(tmp_path)
    assert cfg["name"] == "linear" and proj.out_dim == 2
    assert {p.name for p in tmp_path.iterdir()} == {"projector.json", "projector.safetensors"}
