"""``moe_mlp{E}x{k}``: routing, the auxiliary losses against hand computation, load fractions, sharing, save/load."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from multimodal.errors import InputError
from projectors import create_projector, load_projector, save_projector
from projectors.moe import MoEProjector, RoutingStats, collect_routing, share_experts


def _manual(proj: MoEProjector, x: torch.Tensor) -> torch.Tensor:
    """Every expert on every token, combined with the top-k router probabilities (the definition)."""
    h = proj.adapter(x)  # [B, N, D_h]
    probs = proj.core.router(h).softmax(-1)  # [B, N, E]
    gate, idx = probs.topk(proj.core.top_k, dim=-1)
    outs = torch.stack([e(h) for e in proj.core.experts], dim=-2)  # [B, N, E, D_out]
    picked = outs.gather(-2, idx[..., None].expand(*idx.shape, outs.shape[-1]))  # [B, N, K, D_out]
    return (picked * gate[..., None]).sum(-2)


@pytest.mark.parametrize("name,kwargs,n_in,m_out", [("moe_mlp4x1", {}, 7, 7), ("moe_mlp4x2", {"width": 5}, 7, 7),
                                                    ("moe_mlp3x3", {"stack": 4}, 9, 3)])
def test_shapes_token_counts_and_top_k_dispatch_match_the_definition(name, kwargs, n_in, m_out):
    proj = create_projector(name, 6, 8, **kwargs)
    x = torch.randn(2, n_in, 6)
    y = proj(x)
    assert y.shape == (2, m_out, 8) and proj.num_output_tokens(n_in) == m_out
    stacked = nn.functional.pad(x, (0, 0, 0, (-n_in) % proj.stack)).reshape(2, m_out, 6 * proj.stack)
    torch.testing.assert_close(y, _manual(proj, stacked), rtol=1e-5, atol=1e-6)
    stats = proj.routing
    assert stats.counts.sum() == 2 * m_out * proj.core.top_k and stats.tokens == 2 * m_out


def test_each_token_goes_to_its_k_most_probable_experts_only():
    proj = create_projector("moe_mlp4x2", 3, 5)
    x = torch.randn(1, 6, 3)
    probs = proj.core.router(x).softmax(-1)[0]  # [N, E]
    chosen = probs.topk(2, -1).indices  # [N, 2]
    for e, expert in enumerate(proj.core.experts):  # perturb one expert: only the tokens routed to it change
        before = proj(x)[0]
        with torch.no_grad():
            expert.net[-1].bias.add_(1.0)
        changed = (proj(x)[0] - before).abs().sum(-1) > 0  # [N]
        assert torch.equal(changed, (chosen == e).any(-1)), e


def test_soft_routing_with_k_equal_to_e_weights_every_expert_by_its_probability():
    proj = create_projector("moe_mlp3x3", 4, 4)
    x = torch.randn(2, 5, 4)
    probs = proj.core.router(x).softmax(-1)  # [B, N, E]
    want = sum(probs[..., e, None] * expert(x) for e, expert in enumerate(proj.core.experts))
    torch.testing.assert_close(proj(x), want, rtol=1e-5, atol=1e-6)


def test_aux_losses_and_load_match_a_hand_computation():
    """E=2, k=1, identity router: logits are the tokens themselves."""
    proj = create_projector("moe_mlp2x1", 2, 3)
    with torch.no_grad():
        proj.core.router.weight.copy_(torch.eye(2))
    ln3 = math.log(3.0)
    x = torch.tensor([[[ln3, 0.0], [0.0, ln3], [ln3, 0.0]]])  # probs [.75,.25], [.25,.75], [.75,.25]
    proj(x)
    stats = proj.routing
    assert stats.counts.tolist() == [2.0, 1.0] and stats.load().tolist() == pytest.approx([2 / 3, 1 / 3])
    # f = [2/3, 1/3], P = [7/12, 5/12]: 2 * (2/3 * 7/12 + 1/3 * 5/12) = 38/36
    assert float(stats.balance_loss().detach()) == pytest.approx(38 / 36, rel=1e-6)
    # logsumexp([ln 3, 0]) = ln 4 for every token
    assert float(stats.z_loss().detach()) == pytest.approx(math.log(4.0) ** 2, rel=1e-6)


def test_balance_loss_is_one_at_uniform_load_and_trains_the_router():
    uniform = RoutingStats(torch.tensor([3.0, 3.0, 3.0]), torch.tensor([2.0, 2.0, 2.0]), torch.tensor(0.0),
                           torch.tensor(6.0))
    assert float(uniform.balance_loss()) == pytest.approx(1.0)
    proj = create_projector("moe_mlp4x1", 6, 8)
    proj(torch.randn(2, 5, 6))
    (proj.routing.balance_loss() + proj.routing.z_loss()).backward()
    assert proj.core.router.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["moe_mlp4x1", "moe_mlp4x2", "moe_mlp3x3"])
def test_load_fractions_sum_to_one_and_masked_tokens_are_not_counted(name):
    proj = create_projector(name, 6, 8)
    x = torch.randn(3, 10, 6)
    mask = torch.arange(10)[None] < torch.tensor([[2], [10], [5]])  # [B, M]
    full = proj(x)
    masked = proj(x, token_mask=mask)
    torch.testing.assert_close(masked, full, rtol=0, atol=0)  # the mask changes the statistics only
    stats = proj.routing
    assert int(stats.tokens) == 17 and int(stats.counts.sum()) == 17 * proj.core.top_k
    assert float(stats.load().sum()) == pytest.approx(1.0)
    x_real = x[mask]  # [17, 6]
    probs = proj.core.router(x_real).softmax(-1)
    torch.testing.assert_close(stats.prob_sum, probs.sum(0))


def test_round_trip_is_exact_and_projector_json_records_e_k_and_dims(tmp_path):
    proj = create_projector("moe_mlp4x2", 6, 8, width=5, stack=2)
    save_projector(proj, tmp_path, encoder="tiny_whisper", llm="tiny-random")
    loaded, cfg = load_projector(tmp_path)
    x = torch.randn(2, 7, 6)
    torch.testing.assert_close(loaded(x), proj(x), rtol=0, atol=0)
    assert (cfg["name"], cfg["experts"], cfg["top_k"], cfg["in_dim"], cfg["out_dim"]) == ("moe_mlp4x2", 4, 2, 6, 8)
    assert cfg["kwargs"] == {"width": 5, "stack": 2} and cfg["expert_in_dim"] == 5


@pytest.mark.parametrize("name", ["moe_mlp0x1", "moe_mlp2x3", "moe_mlp2x0"])
def test_impossible_e_and_k_are_a_clear_error(name):
    with pytest.raises(InputError, match="1 <= k <= E"):
        create_projector(name, 4, 4)


def test_shared_experts_pool_both_modalities_in_one_balance_loss():
    image = create_projector("moe_mlp4x1", 6, 8, width=5)
    audio = create_projector("moe_mlp4x1", 3, 8, width=5, stack=2)
    share_experts({"image": image, "audio": audio})
    assert image.core is audio.core and image.adapter is not audio.adapter
    params = list(nn.ModuleDict({"image": image, "audio": audio}).parameters())
    assert len(params) == len(list(image.parameters())) + len(list(audio.adapter.parameters()))
    xi, xa = torch.randn(2, 4, 6), torch.randn(1, 6, 3)
    image(xi)
    audio(xa)
    pooled = image.routing + audio.routing
    routing = collect_routing({"image": image, "audio": audio})
    assert routing.shared and set(routing.counts) == {"image", "audio"}
    torch.testing.assert_close(routing.balance, pooled.balance_loss())
    # pooled over all 11 tokens: recompute from the concatenated adapter outputs
    h = torch.cat([image.adapter(xi).reshape(-1, 5), audio.adapter(xa.reshape(1, 3, 6)).reshape(-1, 5)])
    probs = image.core.router(h).softmax(-1)
    f = nn.functional.one_hot(probs.argmax(-1), 4).float().mean(0)
    torch.testing.assert_close(routing.balance, 4 * (f * probs.mean(0)).sum())
    assert collect_routing({"image": image, "audio": audio}) is None  # taken, not left to be counted twice


def test_sharing_needs_matching_cores():
    with pytest.raises(InputError, match="same 'width'"):
        share_experts({"image": create_projector("moe_mlp4x1", 6, 8, width=5),
                       "audio": create_projector("moe_mlp4x1", 3, 8, width=7)})
    with pytest.raises(InputError, match="MoE projector"):
        share_experts({"image": create_projector("moe_mlp4x1", 6, 8), "audio": create_projector("concat4", 3, 8)})
