"""The tiny stack, loaded once for the bench tests, and a scripted scorer for multiple choice."""

import pytest
import torch


@pytest.fixture(scope="package")
def tiny_assistant():
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant

    return Assistant.load(StackConfig(llm="tiny-random", vision="tiny_vit", speech="", knowledge="none"))


class ScriptedLikelihoods:
    """A backend whose log-likelihoods are a table: ``table[text in the context][choice] = summed log-prob``.

    It decodes the prompt it is given, finds the table entry whose key the context
    contains, and puts that choice's total on the continuation's first token (0 on the
    rest), so the task's sum is exactly the scripted number.
    """

    name = "scripted"
    context_length = 4096

    def __init__(self, tokenizer, table: dict[str, dict[str, float]]):
        self.tokenizer, self.table = tokenizer, table

    def answer_logprobs(self, input_ids, media, answer_ids):
        n = answer_ids.numel()
        context = self.tokenizer.decode(input_ids.reshape(-1).tolist())
        choice = self.tokenizer.decode(answer_ids.tolist())
        (key,) = [k for k in self.table if k in context]
        out = torch.zeros(n, dtype=torch.float64)
        out[0] = self.table[key][choice.strip()]
        return out

    def describe(self) -> str:
        return self.name
