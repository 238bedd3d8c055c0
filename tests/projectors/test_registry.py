import pytest
import torch

from projectors import create_projector, list_projectors


@pytest.mark.parametrize(
    "name,kwargs,n_in,m_out",
    [
        ("linear", {}, 10, 10),
        ("mlp2x_gelu", {}, 10, 10),
        ("mlp3x_gelu", {}, 7, 7),
        ("resampler", {"num_queries": 4, "heads": 2}, 10, 4),
        ("resampler", {"num_queries": 3, "heads": 4, "depth": 2}, 1, 3),
        ("concat4", {}, 10, 3),
        ("concat1", {}, 5, 5),
        ("conv2", {}, 9, 5),
    ],
)
def test_shapes_and_token_counts(name, kwargs, n_in, m_out):
    proj = create_projector(name, 12, 16, **kwargs)
    x = torch.randn(2, n_in, 12, requires_grad=True)
    y = proj(x)
    assert y.shape == (2, m_out, 16)
    assert proj.num_output_tokens(n_in) == m_out
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in proj.parameters())


def test_mlp_depth_counts_linear_layers():
    assert sum(isinstance(m, torch.nn.Linear) for m in create_projector("mlp3x_gelu", 4, 8).modules()) == 3
    assert sum(isinstance(m, torch.nn.Linear) for m in create_projector("linear", 4, 8).modules()) == 1


def test_concat_downsampler_keeps_each_frame_separate():
    proj = create_projector("concat2", 3, 5)
    x = torch.randn(1, 4, 3)
    y_full = proj(x)
    x2 = x.clone()
    x2[:, 3] += 1.0  # only the second merged token may change
    y2 = proj(x2)
    assert torch.equal(y_full[:, 0], y2[:, 0])
    assert not torch.equal(y_full[:, 1], y2[:, 1])


def test_resampler_is_permutation_invariant_over_tokens():
    proj = create_projector("resampler", 8, 16, num_queries=4, heads=4).double()
    x = torch.randn(2, 9, 8, dtype=torch.float64)
    perm = torch.randperm(9)
    torch.testing.assert_close(proj(x), proj(x[:, perm]))


def test_unknown_name_lists_known():
    with pytest.raises(KeyError, match="mlp"):
        create_projector("mlp_relu", 4, 4)
    assert "resampler" in list_projectors()


def test_the_registry_is_the_list_and_every_listed_name_builds():
    from projectors.base import Projector

    names = list_projectors()
    assert {"linear", "mlp{depth}x_gelu", "resampler", "concat{k}", "conv{k}"} <= set(names)
    for name in names:
        proj = create_projector(name.replace("{depth}", "2").replace("{k}", "2").replace("{experts}", "2")
                                .replace("{top_k}", "1"), 8, 16)
        assert isinstance(proj, Projector) and (proj.in_dim, proj.out_dim) == (8, 16)


def test_keyword_arguments_are_forwarded_or_refused_never_dropped():
    """Issue 14: four of five builders silently dropped their kwargs while projector.json recorded them."""
    proj = create_projector("resampler", 8, 16, num_queries=3)
    assert proj.num_output_tokens(50) == 3 and proj.config()["kwargs"] == {"num_queries": 3}
    with pytest.raises(TypeError, match="takes no num_queries"):
        create_projector("mlp2x_gelu", 8, 16, num_queries=3)
    with pytest.raises(TypeError, match="heads"):
        create_projector("resampler", 8, 16, head=2)


def test_registering_a_pattern_twice_warns():
    from projectors.linear import MLPProjector
    from projectors.registry import _REGISTRY, register_projector

    saved = dict(_REGISTRY)
    try:
        with pytest.warns(UserWarning, match="registered twice"):
            register_projector(r"linear")(lambda i, o: MLPProjector(i, o, depth=1))
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(saved)
