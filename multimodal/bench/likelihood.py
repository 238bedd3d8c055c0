"""Log-likelihood of a continuation given a context, the way lm-evaluation-harness computes it.

``loglikelihood(context, continuation)`` in lm-eval's ``HFLM``: trailing spaces of the
context move to the continuation; the context and the whole text are tokenized without
special tokens (no BOS for the models we run); the continuation's tokens are those of the
whole text past the context's; the sum of their log-probabilities, each given everything
before it, is the score. A sequence longer than the model reads is cut on the left.

The sums come from :meth:`~multimodal.backends.base.Backend.answer_logprobs`: one
forward pass on transformers, one shared prefilled context on llama.cpp (no second model
load); another backend raises :class:`~multimodal.errors.ScoringUnsupportedError`.

Letters: L tokens of context and continuation, n continuation tokens.
"""

from __future__ import annotations

from typing import Sequence

import torch


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's ``_encode_pair``: ``(context ids, continuation ids)``."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    head = tokenizer(context, add_special_tokens=False)["input_ids"]
    return list(head), list(whole[len(head):])


def loglikelihood(backend, tokenizer, context: str, continuation: str) -> float:
    """Summed log-probability of ``continuation`` after ``context`` on ``backend``."""
    head, tail = encode_pair(tokenizer, context, continuation)
    if not head or not tail:
        raise ValueError("Both the context and the continuation must hold at least one token.")
    ids = (head + tail)[-backend.context_length:]  # [L], cut on the left as lm-eval does
    if len(ids) <= len(tail):
        raise ValueError(f"A continuation of {len(tail)} tokens leaves no context in {backend.context_length}.")
    ids = torch.tensor(ids, dtype=torch.long)
    with torch.inference_mode():  # no autograd graph: the transformers backend keeps one when grad is on
        logp = backend.answer_logprobs(ids[:-len(tail)], {}, ids[-len(tail):])  # [n]
    return float(logp.double().sum())


def choice_loglikelihoods(backend, tokenizer, context: str, continuations: Sequence[str]) -> list[float]:
    """:func:`loglikelihood` of each continuation after the same context (llama.cpp reuses its prefix)."""
    return [loglikelihood(backend, tokenizer, context, c) for c in continuations]
