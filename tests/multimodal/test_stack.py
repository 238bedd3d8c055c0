"""One stack builder for the pipeline, training, evaluation and export."""

import pytest
import torch
from torch import nn

from encoders import create_encoder
from multimodal.config import StackConfig
from multimodal.errors import ExportError, ModelLoadError
from multimodal.stack import MediaSpec, StackSpec, build_stack
from projectors import create_projector, save_projector


def test_spec_from_config_leaves_out_empty_encoders():
    spec = StackSpec.from_config(StackConfig(llm="tiny-random", vision="tiny_vit", speech="", backend="transformers"))
    assert spec.llm == "tiny-random" and spec.backend == "transformers" and list(spec.media) == ["image"]
    assert spec.media["image"] == MediaSpec("tiny_vit", "auto")


def test_builds_media_llm_and_backend_with_the_width_check(tmp_path):
    good = save_projector(create_projector("mlp2x_gelu", create_encoder("tiny_vit").out_dim, 64), tmp_path / "ok",
                          encoder="tiny_vit", llm="tiny-random")
    stack = build_stack(StackSpec("tiny-random", {"image": MediaSpec("tiny_vit", str(good))}))
    assert stack.backend.name == "transformers" and stack.info["backend"] == "transformers"
    assert set(stack.model.projectors) == {"image"} and stack.tokenizer is stack.model.tokenizer
    assert stack.info["image"]["projector"]["encoder"] == "tiny_vit"

    wide = save_projector(create_projector("mlp2x_gelu", create_encoder("tiny_vit").out_dim, 96), tmp_path / "wide",
                          encoder="tiny_vit", llm="other")
    with pytest.raises(ModelLoadError, match=r"projector in 'wide' maps \d+ -> 96 .* this stack needs \d+ "
                                             r"\(tiny_vit\) -> 64 \(tiny-random\)"):
        build_stack(StackSpec("tiny-random", {"image": MediaSpec("tiny_vit", str(wide))}))


def test_fresh_projectors_are_seeded_and_a_feature_cache_gets_identity_encoders():
    spec = StackSpec("tiny-random", {"audio": MediaSpec("tiny_whisper", fresh="concat4", seed=3)},
                     backend="transformers")
    a, b = build_stack(spec), build_stack(spec, feature_cache=True)
    for p, q in zip(a.model.projectors["audio"].parameters(), b.model.projectors["audio"].parameters()):
        assert torch.equal(p, q)
    assert a.model.projectors["audio"].out_dim == 64
    assert isinstance(b.model.encoders["audio"], nn.Identity) and not isinstance(b.encoders["audio"], nn.Identity)


def test_media_check_runs_before_the_llm_loads(monkeypatch):
    import multimodal.backbone as backbone

    def no_llm(*a, **k):
        raise AssertionError("the LLM must not load when the media check refuses")

    monkeypatch.setattr(backbone, "load_llm", no_llm)

    def refuse(encoders, projectors):
        assert set(encoders) == {"image"} and projectors == {}
        raise ExportError("not exportable")

    with pytest.raises(ExportError, match="not exportable"):
        build_stack(StackSpec("tiny-random", {"image": MediaSpec("tiny_vit", "none")}), check_media=refuse)


def test_unknown_modality_is_refused():
    with pytest.raises(ModelLoadError, match="Unknown modality 'video'"):
        build_stack(StackSpec("tiny-random", {"video": MediaSpec("tiny_vit")}))
