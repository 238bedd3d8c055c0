"""Several training processes: the process group, and how the model is split across it.

``torchrun`` / ``accelerate launch`` describe the group in the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); :func:`setup_distributed` joins it
(gloo on CPU, nccl on CUDA) and is a no-op for a single process. Two ways to
spread the model, chosen by ``TrainConfig.parallel``:

- ``ddp``: every rank holds the whole stack; PyTorch's DDP averages gradients.
- ``fsdp``: the frozen LLM is sharded across ranks with FSDP2 (each decoder
  layer its own unit, gathered just in time for its forward and backward),
  so a backbone too large for one GPU still trains a projector. The input
  embedding table stays whole on every rank, because media features are
  spliced into its output before the LLM runs; the small projectors are
  replicated and :func:`average_gradients` averages their gradients.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from .errors import MedAnyError

PARALLEL_MODES = ("ddp", "fsdp")


@dataclass
class DistEnv:
    """Where this process stands in the group."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def ddp(self) -> bool:
        """More than one process (whichever way the model is split)."""
        return self.world > 1

    def barrier(self) -> None:
        if self.ddp:
            torch.distributed.barrier()


def setup_distributed() -> DistEnv:
    """Join the process group the launcher describes in the environment (no-op when alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return DistEnv(rank, world, local, device)


def decoder_layers(llm: nn.Module) -> list[nn.Module]:
    """The LLM's repeated blocks, found by the class names HF lists in ``_no_split_modules``."""
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm  # through PEFT
    names = set(getattr(base, "_no_split_modules", None) or ())
    return [m for m in base.modules() if type(m).__name__ in names]


def shard_frozen_llm(llm: nn.Module) -> int:
    """Shard ``llm`` in place with FSDP2 (see the module docstring); returns the number of layer units."""
    from torch.distributed.fsdp import fully_shard

    layers = decoder_layers(llm)
    if not layers:
        raise MedAnyError(f"parallel='fsdp' cannot find the decoder layers of {type(llm).__name__} "
                          "(it lists no _no_split_modules); use parallel='ddp'.")
    for layer in layers:
        fully_shard(layer)
    # The table is looked up outside the LLM's forward (to splice media in), so it stays whole.
    fully_shard(llm, ignored_params=set(llm.get_input_embeddings().parameters()))
    return len(layers)


def average_gradients(params: list[nn.Parameter], world: int) -> None:
    """Set the gradients of replicated ``params`` to their mean over ``world`` ranks (one flat all-reduce).

    A parameter that got no gradient on this rank (its modality was absent from
    the micro-batch) counts as zeros, so every rank reduces the same buffer.
    """
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])  # [sum of sizes]
    torch.distributed.all_reduce(flat)
    flat /= world
    offset = 0
    for p in params:
        p.grad.copy_(flat[offset : offset + p.numel()].view_as(p))
        offset += p.numel()
