"""Mixture-of-experts projector ``moe_mlp{E}x{k}``: E ``mlp2x_gelu`` experts, each token routed to k of them.

A linear router scores every token against the E experts; the token goes to
its k best experts and their outputs are summed, each weighted by its router
probability (Switch / OLMoE style: the top-k probabilities are not
renormalized, so the router learns through them even at k = 1). k = E is soft
routing: every expert sees every token, weighted by the full softmax.

Two auxiliary losses keep the router healthy; the trainer adds them with the
weights ``TrainConfig.moe_balance_weight`` and ``moe_z_weight``:

- load balance (Switch Transformer): ``E * sum_i f_i * P_i``, with ``f_i`` the
  fraction of the (token, slot) assignments that went to expert i (sums to 1)
  and ``P_i`` the mean router probability of expert i. It is 1 when the load
  is uniform and E when every token goes to one expert the router is sure of;
- router z-loss (ST-MoE): ``mean(logsumexp(logits)^2)``, which keeps the logits
  small enough for bf16.

Each forward leaves its :class:`RoutingStats` (sums, not means, so several
forwards and modalities add up exactly) in ``projector.routing``;
:func:`collect_routing` takes them for the loss and the per-expert load log.
Tokens masked out by ``token_mask`` (Whisper's padding frames, cut off after the
projector anyway) are routed but not counted.

One projector for several modalities: ``stack`` merges k neighbouring encoder
tokens first (what ``concat{k}`` does for speech) and ``width`` adds a linear
input layer to a common width, so encoders of different widths reach the same
router and experts. :func:`share_experts` then makes the projectors of several
modalities use one router and one set of experts, each keeping its own input
layer (see docs/projectors.md).

Letters: B batch, N tokens in, M = ceil(N / stack) tokens out, T = B*M routed
tokens, E experts, K = top-k, D_in encoder width, D_h expert input width,
D_out LLM width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from multimodal.errors import InputError

from .base import Projector
from .linear import MLPProjector
from .registry import register_projector


@dataclass
class RoutingStats:
    """Sums over the counted tokens of one or more forwards through one router."""

    counts: Tensor
    """``[E]`` (token, slot) assignments per expert; no gradient."""
    prob_sum: Tensor
    """``[E]`` router probabilities summed over tokens; differentiable."""
    z_sum: Tensor
    """``[]`` sum of ``logsumexp(logits)^2`` over tokens; differentiable."""
    tokens: Tensor
    """``[]`` counted tokens."""

    def __add__(self, other: "RoutingStats") -> "RoutingStats":
        return RoutingStats(self.counts + other.counts, self.prob_sum + other.prob_sum, self.z_sum + other.z_sum,
                            self.tokens + other.tokens)

    def load(self) -> Tensor:
        """``[E]`` fraction of the assignments each expert took (sums to 1; zeros when nothing was counted)."""
        return self.counts / self.counts.sum().clamp_min(1)

    def balance_loss(self) -> Tensor:
        """Switch load-balance loss ``E * sum_i f_i * P_i`` (1 at uniform load)."""
        n = self.tokens.clamp_min(1)
        return self.counts.numel() * (self.load() * (self.prob_sum / n)).sum()

    def z_loss(self) -> Tensor:
        """Router z-loss ``mean(logsumexp(logits)^2)``."""
        return self.z_sum / self.tokens.clamp_min(1)


class MoECore(nn.Module):
    """Router + experts: ``[B, M, D_h] -> [B, M, D_out]`` and the forward's :class:`RoutingStats`."""

    def __init__(self, in_dim: int, out_dim: int, experts: int, top_k: int):
        super().__init__()
        self.in_dim, self.out_dim, self.num_experts, self.top_k = in_dim, out_dim, experts, top_k
        self.router = nn.Linear(in_dim, experts, bias=False)
        self.experts = nn.ModuleList(MLPProjector(in_dim, out_dim, depth=2) for _ in range(experts))

    def spec(self) -> tuple[int, int, int, int]:
        """What two cores must agree on to be shared."""
        return self.in_dim, self.out_dim, self.num_experts, self.top_k

    def forward(self, h: Tensor, token_mask: Tensor | None = None) -> tuple[Tensor, RoutingStats]:
        b, m, d = h.shape  # [B, M, D_h]
        flat = h.reshape(b * m, d)  # [T, D_h]
        logits = self.router(flat).float()  # [T, E]; routing decisions in fp32 even under autocast
        probs = logits.softmax(-1)  # [T, E]
        gate, idx = probs.topk(self.top_k, dim=-1)  # [T, K] each
        out = torch.zeros(b * m, self.out_dim, device=h.device, dtype=torch.float32)  # [T, D_out]
        for e, expert in enumerate(self.experts):
            tok, slot = (idx == e).nonzero(as_tuple=True)  # [t_e] each
            if tok.numel():
                y = expert(flat[tok]) * gate[tok, slot, None]  # [t_e, D_out]
                out.index_add_(0, tok, y.float())
        keep = (torch.ones(b * m, dtype=torch.bool, device=h.device) if token_mask is None
                else token_mask.reshape(b * m).to(h.device))  # [T]
        assigned = F.one_hot(idx[keep], self.num_experts).sum((0, 1)).float()  # [E]
        stats = RoutingStats(assigned, probs[keep].sum(0), torch.logsumexp(logits[keep], -1).pow(2).sum(),
                             keep.sum().float())
        return out.to(h.dtype).reshape(b, m, self.out_dim), stats  # [B, M, D_out]


class MoEProjector(Projector):
    """``[B, N, D_in] -> [B, ceil(N/stack), D_out]`` through ``experts`` routed ``mlp2x_gelu`` experts.

    ``stack`` > 1 concatenates runs of ``stack`` tokens first (zero-padded tail,
    as :class:`~projectors.downsample.ConcatDownsampler`); ``width`` adds a
    linear layer to that width in front of the router and experts (needed when
    modalities of different widths share them; None: the experts read the
    stacked tokens directly). ``routing`` holds the last forward's stats.
    """

    takes_token_mask = True
    """:meth:`MedAnyModel.encode` passes which output tokens are real (the rest is not counted in the load)."""

    def __init__(self, in_dim: int, out_dim: int, experts: int, top_k: int, width: int | None = None,
                 stack: int = 1):
        super().__init__(in_dim, out_dim)
        if experts < 1 or not 1 <= top_k <= experts:
            raise InputError(f"An MoE projector needs 1 <= k <= E experts; got E={experts}, k={top_k}.")
        if stack < 1 or (width is not None and width < 1):
            raise InputError(f"MoE projector stack and width must be positive; got stack={stack}, width={width}.")
        self.stack = stack
        stacked = in_dim * stack
        self.adapter = nn.Linear(stacked, width) if width else nn.Identity()
        self.core = MoECore(width or stacked, out_dim, experts, top_k)
        self.routing: RoutingStats | None = None

    def forward(self, x: Tensor, token_mask: Tensor | None = None) -> Tensor:
        b, n, d = x.shape  # [B, N, D_in]
        pad = (-n) % self.stack
        if pad:
            x = F.pad(x, (0, 0, 0, pad))  # [B, N + pad, D_in]
        x = x.reshape(b, (n + pad) // self.stack, self.stack * d)  # [B, M, stack*D_in]
        y, self.routing = self.core(self.adapter(x), token_mask)  # [B, M, D_out]
        return y

    def num_output_tokens(self, n_in: int) -> int:
        return math.ceil(n_in / self.stack)

    def config(self) -> dict:
        """As every projector's, plus E, k and the expert input width spelled out for readers of projector.json."""
        return {**super().config(), "experts": self.core.num_experts, "top_k": self.core.top_k,
                "expert_in_dim": self.core.in_dim, "stack": self.stack}

    def active_parameters(self) -> int:
        """Parameters one token passes through: input layer, router and k of the E experts."""
        per_expert = sum(p.numel() for p in self.core.experts[0].parameters())
        return (sum(p.numel() for p in self.adapter.parameters()) + self.core.router.weight.numel()
                + self.core.top_k * per_expert)


@register_projector(r"moe_mlp(?P<experts>\d+)x(?P<top_k>\d+)")
def moe_mlp(in_dim: int, out_dim: int, experts: int, top_k: int, width: int | None = None,
            stack: int = 1) -> MoEProjector:
    return MoEProjector(in_dim, out_dim, experts, top_k, width=width, stack=stack)


def share_experts(projectors: Mapping[str, nn.Module]) -> None:
    """Make every MoE projector in ``projectors`` use the first one's router and experts (in place).

    Each keeps its own input layer (``stack``, ``width``); the shared part must
    agree (same E, k, expert input width and output width), otherwise an
    :class:`~multimodal.errors.InputError` names the difference.
    """
    moes = {kind: p for kind, p in projectors.items() if isinstance(p, MoEProjector)}
    if len(moes) != len(projectors) or len(moes) < 2:
        raise InputError("share_projector needs an MoE projector (moe_mlp{E}x{k}) for every modality, and at "
                         "least two modalities in the data.")
    (first_kind, first), *rest = moes.items()
    for kind, proj in rest:
        if proj.core.spec() != first.core.spec():
            raise InputError(
                f"The {kind} and {first_kind} MoE projectors cannot share experts: (expert input width, output "
                f"width, E, k) are {proj.core.spec()} and {first.core.spec()}; give both the same 'width' in "
                "projector_kwargs.")
        proj.core = first.core


@dataclass
class Routing:
    """The routing of one training forward: the auxiliary losses and each modality's expert counts."""

    balance: Tensor
    """Sum over distinct routers of the load-balance loss (over all modalities a router serves)."""
    z: Tensor
    """Sum over distinct routers of the z-loss."""
    counts: dict[str, Tensor]
    """Modality -> ``[E]`` assignments (detached)."""
    shared: bool
    """Whether all modalities went through one router (then their counts add up to one load)."""


def collect_routing(projectors: Mapping[str, nn.Module]) -> Routing | None:
    """Take (and clear) the routing stats the last forward left in ``projectors``; None without MoE projectors
    that ran. Projectors sharing a router are pooled first, so the balance loss is over all their tokens."""
    by_core: dict[int, RoutingStats] = {}
    counts: dict[str, Tensor] = {}
    for kind, proj in projectors.items():
        stats = getattr(proj, "routing", None)
        if not isinstance(proj, MoEProjector) or stats is None:
            continue
        proj.routing = None
        key = id(proj.core)
        by_core[key] = by_core[key] + stats if key in by_core else stats
        counts[kind] = stats.counts.detach()
    if not by_core:
        return None
    pooled = list(by_core.values())
    shared = len({id(p.core) for p in projectors.values() if isinstance(p, MoEProjector)}) == 1
    return Routing(sum(s.balance_loss() for s in pooled), sum(s.z_loss() for s in pooled), counts, shared)
