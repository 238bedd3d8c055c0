"""lm-eval's log-likelihood on the transformers backend (the tiny random Llama), against a plain forward pass."""

import pytest
import torch

from multimodal.backends.hf import TransformersBackend
from multimodal.bench.likelihood import choice_loglikelihoods, encode_pair, loglikelihood
from multimodal.model import MedAnyModel


@pytest.fixture(scope="module")
def backend(tiny_llm):
    llm, tok = tiny_llm
    return TransformersBackend(MedAnyModel(llm, tok, {}, {}).eval())


def _reference(tiny_llm, context: str, continuation: str) -> float:
    """Sum of log P(token) over the continuation's tokens, from the model's own logits on the whole text."""
    llm, tok = tiny_llm
    head = tok(context, add_special_tokens=False)["input_ids"]
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(llm(torch.tensor([whole])).logits[0].double(), dim=-1)  # [L, V]
    return float(sum(logp[i - 1, whole[i]] for i in range(len(head), len(whole))))


def test_encode_pair_moves_trailing_spaces_to_the_continuation(tiny_llm):
    tok = tiny_llm[1]
    head, tail = encode_pair(tok, "Answer: ", "A")
    assert head == tok("Answer:", add_special_tokens=False)["input_ids"]
    assert tok.decode(tail) == " A"


def test_loglikelihood_equals_the_forward_pass(backend, tiny_llm):
    context = "Question: Which bone is the longest?\nA. Humerus\nB. Femur\nAnswer:"
    for continuation in (" A", " B", " maybe so"):
        assert loglikelihood(backend, tiny_llm[1], context, continuation) == \
            pytest.approx(_reference(tiny_llm, context, continuation), abs=1e-4)
    lls = choice_loglikelihoods(backend, tiny_llm[1], context, [" A", " B"])
    assert len(lls) == 2 and lls[0] != lls[1] and all(v < 0 for v in lls)


def test_a_long_sequence_is_cut_on_the_left(backend, tiny_llm):
    short = loglikelihood(backend, tiny_llm[1], "x" * 40, " yes")
    backend.context_length, saved = 10, backend.context_length
    try:
        # 10 tokens kept of "xxxx... yes": the same as scoring the last 10 tokens alone
        cut = loglikelihood(backend, tiny_llm[1], "x" * 40, " yes")
        assert cut == pytest.approx(_reference(tiny_llm, "x" * 6, " yes"), abs=1e-4)
    finally:
        backend.context_length = saved
    assert short == pytest.approx(_reference(tiny_llm, "x" * 40, " yes"), abs=1e-4)
    with pytest.raises(ValueError):
        loglikelihood(backend, tiny_llm[1], "", " yes")
