import pytest

from multimodal.config import StackConfig


def test_json_round_trip(tmp_path):
    cfg = StackConfig(llm="tiny-random", image_projector="/x", max_new_tokens=7)
    path = tmp_path / "stack.json"
    path.write_text(cfg.to_json())
    assert StackConfig.from_file(path) == cfg


def test_unknown_field_is_refused():
    with pytest.raises(ValueError, match="lmm"):
        StackConfig.from_json('{"lmm": "x"}')


def test_defaults_are_the_embedded_stack():
    cfg = StackConfig()
    assert (cfg.llm, cfg.vision, cfg.speech) == ("embedded", "medany-lite0", "medany-whisper")
    assert cfg.temperature == 0.0  # deterministic by default
