"""Differentially private projector training (DP-SGD with Opacus): Poisson batches, clipping, noise, accounting.

Under ``TrainConfig.dp`` only the projectors learn (encoders and the LLM stay
frozen; LoRA is refused), so per-sample gradients are needed for the
projectors' parameters alone. Opacus's hooks
(:class:`opacus.grad_sample.GradSampleHooks`, attached to the projector
without wrapping it, so parameter names and checkpoints stay as they are)
compute them from the projector's own activations and the one batched
backward pass through the frozen LLM: layers Opacus has a grad sampler for
(Linear, Conv1d, LayerNorm) use it; a module with parameters of its own and no
sampler (the resampler's learned queries) is differentiated per sample with
``torch.func`` (Opacus's functorch path). A probe at start-up checks the
per-sample gradients of every projector against plain autograd and refuses,
with a typed error, a projector whose samples interact.

The privacy unit is one conversation (a line of the training set): the
gradients of its media items are summed before clipping, so a conversation
with two images is clipped, and counted, once.

One step: every conversation joins the batch with probability ``q = E[B] / n``
(Opacus's Poisson sampler; the batch may be empty), the batch runs in chunks
of ``batch_size``, each conversation's gradient is clipped to ``C``
(``max_grad_norm``), the clipped gradients are summed, Gaussian noise of
standard deviation ``sigma * C`` is added, the sum is divided by ``E[B]`` and
AdamW steps. ``sigma`` is calibrated once so that the accountant reaches the
target epsilon exactly at the run's last step.

The guarantee holds only while the batches and the noise are unpredictable,
so both come from generators seeded by a secret drawn from the operating
system (``dp.seed`` replaces it for reproducible experiments, and voids the
guarantee for whoever knows it). The secret, the noise generator's state and
the accountant's history are plain JSON in each checkpoint's
``trainer_state.json``, so a resumed run is the uninterrupted one; checkpoints
are therefore as private as the data. The saved projector's ``projector.json``
records the guarantee and nothing computed from the training data without
noise (no training losses, no dataset hash). Secure mode against
floating-point attacks (Opacus's ``secure_mode``, torchcsprng) is not used.

Letters: B conversations in a chunk, n media items of one kind, P a parameter's shape.
"""

from __future__ import annotations

import random
import secrets
import warnings

import torch
from torch import Tensor, nn

from .errors import MedAnyError, require
from .template import MEDIA_TOKEN_IDS
from .train_config import DPConfig

# The projector's input (frozen encoder tokens) needs no gradient, so Opacus's backward hooks fire on its
# output alone: exactly what they read (the backprops). PyTorch's notice about it is noise here.
warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed with respect "
                                          "to module outputs")


class PrivacyError(MedAnyError, RuntimeError):
    """Differentially private training cannot run as configured (the message says why)."""


class PoissonBatches(torch.utils.data.Sampler):
    """Index lists of steps ``start .. stop-1`` of Opacus's Poisson sampler, a pure function of ``seed``.

    Each of ``n`` conversations joins each step's batch independently with
    probability ``sample_rate``. A resumed run replays the draws of the steps
    it skips (``n`` uniform numbers each), so its batches are the uninterrupted run's.
    """

    def __init__(self, n: int, sample_rate: float, *, seed: int, start: int, stop: int):
        self.n, self.sample_rate, self.seed, self.start, self.stop = n, sample_rate, seed, start, stop

    def __iter__(self):
        from opacus.utils.uniform_sampler import UniformWithReplacementSampler

        draws = UniformWithReplacementSampler(num_samples=self.n, sample_rate=self.sample_rate,
                                              generator=torch.Generator().manual_seed(self.seed), steps=self.stop)
        for step, indices in enumerate(draws):
            if step >= self.start:
                yield indices

    def __len__(self) -> int:
        return self.stop - self.start


def collate_chunks(items: list[dict], *, pad_id: int, size: int) -> list[dict]:
    """One Poisson batch as collated chunks of at most ``size`` conversations (none for an empty batch)."""
    from .data import collate

    return [collate(items[i : i + size], pad_id) for i in range(0, len(items), size)]


def media_owners(input_ids: Tensor, kind: str, llm_tokens: list[int]) -> Tensor:
    """The row (conversation) of each ``kind`` item of a collated batch: items fill the sentinel slots in order."""
    per_row = (input_ids == MEDIA_TOKEN_IDS[kind]).sum(1)  # [B]
    ends = per_row.cumsum(0)  # [B]: slots used up to and including each row
    starts = torch.tensor([0, *llm_tokens[:-1]], device=ends.device).cumsum(0)  # [n]: each item's first slot
    return torch.searchsorted(ends, starts, right=True)  # [n]


class PrivateTraining:
    """DP-SGD for a model's projectors: per-sample gradients, the DP optimizer, the accountant.

    ``optimizer`` is the run's optimizer over the projector parameters; use
    :attr:`optimizer` (it wraps it) from then on. ``expected_batch_size`` is
    ``E[B]`` of the Poisson batches, ``steps`` the optimizer steps of the whole run.
    """

    def __init__(self, dp: DPConfig, model: nn.Module, optimizer: torch.optim.Optimizer, *, dataset_size: int,
                 expected_batch_size: int, steps: int):
        require("opacus", "all")
        from opacus.accountants import create_accountant
        from opacus.accountants.utils import get_noise_multiplier
        from opacus.optimizers import DPOptimizer

        self.dp = dp
        self.params = [p for p in model.projectors.parameters() if p.requires_grad]
        trained = {id(p) for g in optimizer.param_groups for p in g["params"] if p.requires_grad}
        if trained != {id(p) for p in self.params}:
            raise PrivacyError("Differential privacy covers the projectors only, and something else would learn.")
        self.expected_batch_size = expected_batch_size
        self.sample_rate = min(1.0, expected_batch_size / dataset_size)
        with warnings.catch_warnings():  # "optimal order is the largest alpha": the bound is valid, a bit loose
            warnings.simplefilter("ignore", UserWarning)
            self.noise_multiplier = get_noise_multiplier(
                target_epsilon=dp.epsilon, target_delta=dp.delta, sample_rate=self.sample_rate, steps=steps,
                accountant=dp.accountant)
        self.accountant = create_accountant(dp.accountant)
        self.hooks = [per_sample_hooks(name, proj) for name, proj in model.projectors.items()]
        self.secret = dp.seed if dp.seed is not None else secrets.randbits(63)
        self.noise = torch.Generator(device=self.params[0].device)
        self.noise.manual_seed(random.Random(f"{self.secret}:noise").getrandbits(63))
        self.optimizer = DPOptimizer(optimizer, noise_multiplier=self.noise_multiplier,
                                     max_grad_norm=dp.max_grad_norm, expected_batch_size=expected_batch_size,
                                     loss_reduction="mean", generator=self.noise)
        self.projectors = dict(model.projectors.items())
        self._folded: list[list[Tensor]] = [[] for _ in self.params]

    def batches(self, n: int, *, start: int, stop: int) -> PoissonBatches:
        """The Poisson batch sampler of steps ``start .. stop-1`` (seeded by the run's secret)."""
        return PoissonBatches(n, self.sample_rate, seed=random.Random(f"{self.secret}:batches").getrandbits(63),
                              start=start, stop=stop)

    def backward(self, model: nn.Module, batch: dict, autocast) -> Tensor:
        """Forward and backward one chunk, keeping each conversation's gradient; returns the losses ``[B]``."""
        with autocast():
            losses = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"),
                           labels=batch["labels"], media=batch["media"], per_sample=True).loss  # [B]
        # A sum, not a mean: each conversation's gradient is then its own, unscaled (GradSampleHooks "sum").
        losses.sum().backward()
        self._fold(batch)
        return losses.detach().float()

    def _fold(self, batch: dict) -> None:
        """Per-item gradients -> per-conversation gradients ``[B, *P]`` (a conversation's items summed)."""
        b = batch["input_ids"].shape[0]
        owners = {kind: media_owners(batch["input_ids"], kind, batch["media"][kind].llm_tokens)
                  for kind in self.projectors if kind in batch["media"]}
        by_param = {id(p): kind for kind, proj in self.projectors.items() for p in proj.parameters()}
        for i, p in enumerate(self.params):
            folded = p.new_zeros((b, *p.shape))  # [B, *P]
            gs = getattr(p, "grad_sample", None)
            if gs is not None:
                gs = torch.cat(gs) if isinstance(gs, list) else gs  # [n, *P]
                folded.index_add_(0, owners[by_param[id(p)]], gs.to(folded.dtype))
            self._folded[i].append(folded)
            p.grad_sample = None

    def grad_samples(self) -> list[Tensor]:
        """Each projector parameter's per-conversation gradients ``[B, *P]`` over the chunks so far."""
        return [torch.cat(f) if f else p.new_zeros((0, *p.shape)) for p, f in zip(self.params, self._folded)]

    def step(self) -> dict:
        """Clip, sum, add noise, average, step the optimizer and the accountant; returns the step's statistics."""
        samples = self.grad_samples()
        norms = torch.stack([g.flatten(1).norm(dim=1) for g in samples]).norm(dim=0)  # [B]
        for p, g in zip(self.params, samples):
            p.grad_sample = g
        self.optimizer.step()  # Opacus: clip each row to C, sum, + N(0, (sigma C)^2), / E[B], then AdamW
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)
        self._folded = [[] for _ in self.params]
        b = int(norms.numel())
        return {"epsilon": self.epsilon(), "batch_size": b,
                "clipped_fraction": float((norms > self.dp.max_grad_norm).float().mean()) if b else 0.0,
                "per_sample_grad_norm": float(norms.mean()) if b else None}

    def epsilon(self) -> float:
        """The epsilon spent so far at the configured delta (0 before the first step)."""
        if not len(self.accountant):
            return 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return float(self.accountant.get_epsilon(delta=self.dp.delta))

    def steps_taken(self) -> int:
        return sum(int(n) for _, _, n in self.accountant.history)

    def state_dict(self) -> dict:
        """Plain JSON: the accountant's history, what calibrated it, the secret seed and the noise generator."""
        state = self.accountant.state_dict()
        return {"accountant": {"mechanism": state["mechanism"], "history": [list(h) for h in state["history"]]},
                "noise_multiplier": self.noise_multiplier, "sample_rate": self.sample_rate,
                "secret_seed": self.secret, "noise_rng": self.noise.get_state().tolist()}

    def load_state_dict(self, state: dict) -> None:
        """Continue the accountant and the randomness of a checkpoint written with the same privacy settings."""
        acc = state.get("accountant", {})
        if (acc.get("mechanism") != self.accountant.mechanism() or state.get("sample_rate") != self.sample_rate
                or state.get("noise_multiplier") != self.noise_multiplier
                or (self.dp.seed is not None and state.get("secret_seed") != self.dp.seed)):
            raise PrivacyError("The checkpoint's privacy accounting does not match this config (the accountant, "
                               "epsilon, delta, seed, step count, batch size or data size changed); resume with "
                               "the settings of the checkpointed run.")
        self.accountant.load_state_dict({"mechanism": acc["mechanism"],
                                         "history": [tuple(h) for h in acc["history"]]})
        self.secret = int(state["secret_seed"])
        self.noise.set_state(torch.tensor(state["noise_rng"], dtype=torch.uint8))

    def manifest(self) -> dict:
        """What a shipped projector records about its privacy guarantee."""
        return {"epsilon": self.epsilon(), "target_epsilon": self.dp.epsilon, "delta": self.dp.delta,
                "max_grad_norm": self.dp.max_grad_norm, "noise_multiplier": self.noise_multiplier,
                "sample_rate": self.sample_rate, "expected_batch_size": self.expected_batch_size,
                "steps": self.steps_taken(), "accountant": self.dp.accountant, "sampling": "poisson",
                "unit": "conversation",
                "randomness": "secret" if self.dp.seed is None else "fixed by dp.seed: no guarantee against whoever "
                                                                    "knows it"}

    def close(self) -> None:
        """Detach the hooks and drop Opacus's per-parameter attributes (training is over)."""
        for hooks in self.hooks:
            hooks.cleanup()
        for p in self.params:
            if hasattr(p, "summed_grad"):
                del p.summed_grad


def per_sample_hooks(name: str, projector: nn.Module):
    """Opacus's per-sample gradient hooks on ``projector`` (modality ``name``), checked on a probe batch.

    Layers without a grad sampler already go through ``torch.func``; when the
    layer samplers fail the probe, every layer does. A projector for which
    neither gives exact per-sample gradients (one with buffers, or one that
    mixes the items of a batch) raises a :class:`PrivacyError` naming it.
    """
    from opacus.grad_sample import GradSampleHooks

    problem = ""
    for force_functorch in (False, True):
        try:
            hooks = GradSampleHooks(projector, loss_reduction="sum", force_functorch=force_functorch)
        except (NotImplementedError, ValueError) as exc:  # Opacus refuses the module (buffers, ...)
            problem = str(exc).strip()
            for p in projector.parameters():  # what it attached before refusing
                for attr in ("grad_sample", "_forward_counter"):
                    if hasattr(p, attr):
                        delattr(p, attr)
            continue
        try:
            problem = _probe(projector, hooks)
        except Exception as exc:  # whatever a layer's per-sample rule raises, the next option may work
            problem = f"{type(exc).__name__}: {exc}"
        if not problem:
            return hooks
        hooks.cleanup()
    kind = getattr(projector, "registry_name", type(projector).__name__)
    raise PrivacyError(f"The {name} projector '{kind}' cannot be trained with differential privacy: Opacus gives "
                       f"no exact per-sample gradients for it ({problem}).")


def _probe(projector: nn.Module, hooks) -> str:
    """'' when the hooks' per-sample gradients of a random 2-item batch equal per-item autograd, else why not."""
    params = [p for p in projector.parameters() if p.requires_grad]
    device = params[0].device
    gen = torch.Generator().manual_seed(0)  # the global RNG stays untouched (a resumed run replays it)
    x = torch.randn(2, 4, projector.in_dim, generator=gen).to(device)  # [2, N, D_in]
    with torch.no_grad():  # no activations captured: every captured forward must meet its backward
        out_shape = projector(x[:1]).shape[1:]
    weights = torch.randn(out_shape, generator=gen).to(device)  # [M, D_out]
    try:
        grads = torch.autograd.grad((projector(x) * weights).sum(), params)
        del grads
        got = [p.grad_sample for p in params]
        if any(g is None for g in got):
            return "no per-sample gradient for some parameters"
        hooks.disable_hooks()
        for i in range(2):
            ref = torch.autograd.grad((projector(x[i : i + 1]) * weights).sum(), params)
            for g, r in zip(got, ref):  # float noise aside (~1e-7 relative): a layer mixing items is far off
                if float((g[i] - r).norm()) > 1e-3 * float(r.norm()) + 1e-6:
                    return "they differ from per-item autograd"
        return ""
    finally:
        hooks.enable_hooks()
        for p in params:
            p.grad_sample = None
