"""What every inference backend shares: generation settings, stop tokens, token choice, streamed text.

A backend turns a prompt (token ids with media sentinels, plus the projected
media features that replace them) into new token ids. Everything that decides
*which* token comes next lives here, once, so the transformers reference and
the llama.cpp runtime behave the same: the transformers backend hands these
settings to HF ``generate``; the llama.cpp backend applies HF's rules to
llama.cpp's logits (:func:`choose_token`: HF's repetition-penalty formula, HF's
own temperature and top-p warpers), and a test holds the two to the same tokens.

Letters: L prompt length, T media tokens of one kind, D LLM width, V vocabulary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping

import torch
from torch import Tensor

# End-of-turn markers of the chat templates we meet (ChatML, Llama 3, Gemma, Phi-3). A model
# stops at its tokenizer's EOS, its generation config's EOS ids, and whichever of these it has.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")


@dataclass
class GenerationSettings:
    """How one answer is generated. Identical meaning on every backend."""

    max_new_tokens: int = 200
    temperature: float = 0.0
    """0 means greedy decoding (deterministic)."""
    repetition_penalty: float = 1.0
    """HF/CTRL rule over the *generated* tokens: positive logits divided, negative multiplied."""
    top_p: float = 1.0
    """Nucleus sampling when sampling (1.0: off)."""

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def hf_kwargs(self) -> dict:
        """The same settings as keyword arguments of HF ``generate`` (model defaults switched off)."""
        kwargs = {"max_new_tokens": self.max_new_tokens, "repetition_penalty": self.repetition_penalty, "top_k": None}
        if self.greedy:
            return {**kwargs, "do_sample": False, "temperature": None, "top_p": None}
        return {**kwargs, "do_sample": True, "temperature": self.temperature, "top_p": self.top_p}


def logits_processors(settings: GenerationSettings):
    """The HF logits warpers HF ``generate`` builds for sampling with ``settings``, in its order.

    The repetition penalty, which comes first there, is applied by :func:`choose_token`
    itself with HF's formula (HF's processor pads the whole vocabulary each step: about
    7 ms a token on this CPU, for a 135M model a fifth of the step).
    """
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    procs = LogitsProcessorList()
    if not settings.greedy:
        if settings.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(settings.temperature))
        if settings.top_p < 1.0:
            procs.append(TopPLogitsWarper(settings.top_p))
    return procs


def penalize_repeats(logits: Tensor, generated: list[int], penalty: float) -> Tensor:
    """HF's ``RepetitionPenaltyLogitsProcessor`` on ``logits`` ``[V]``: each generated token's logit
    divided by ``penalty`` when positive, multiplied when negative (in place)."""
    if penalty == 1.0 or not generated:
        return logits
    seen = torch.tensor(sorted(set(generated)), dtype=torch.long)  # [n]
    values = logits[seen]
    logits[seen] = torch.where(values < 0, values * penalty, values / penalty)
    return logits


def choose_token(logits: Tensor, generated: list[int], settings: GenerationSettings, procs) -> int:
    """Next token id from raw next-token ``logits`` ``[V]`` after ``generated`` new tokens."""
    scores = penalize_repeats(logits.float().clone(), generated, settings.repetition_penalty)  # [V]
    if settings.greedy:
        return int(scores.argmax())
    scores = procs(torch.tensor([generated], dtype=torch.long), scores[None])[0]  # [V]
    return int(torch.multinomial(torch.softmax(scores, dim=-1), 1))


def stop_token_ids(tokenizer, generation_config=None) -> frozenset[int]:
    """Ids that end an answer: EOS of the tokenizer and generation config, and the template's end of turn."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    eos = getattr(generation_config, "eos_token_id", None)
    if eos is not None:
        ids.update(int(i) for i in (eos if isinstance(eos, (list, tuple)) else [eos]))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN if t in vocab)
    return frozenset(ids)


def context_length(config, tokenizer=None, default: int = 4096) -> int:
    """How many tokens (prompt and answer) a transformers model reads: its position table, else the tokenizer's."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < 10**7 else default


class Backend(ABC):
    """One loaded LLM that answers from token ids plus projected media features.

    ``tokenizer`` is a Hugging Face tokenizer (the chat template and the media
    sentinels are handled by :mod:`multimodal.template` for every backend).
    """

    name: str
    tokenizer: object
    hidden_size: int
    stop_ids: frozenset[int]
    context_length: int
    """Most tokens the LLM reads in one sequence: the prompt plus the answer."""

    @abstractmethod
    def generate_ids(self, input_ids: Tensor, media: Mapping[str, Tensor], settings: GenerationSettings,
                     should_stop: Callable[[], bool] | None = None) -> Iterator[int]:
        """Yield new token ids for the prompt ``input_ids`` ``[L]``; ``media[kind]`` is ``[T, D]``.

        Stops at a stop token (not yielded), after ``settings.max_new_tokens``,
        or as soon as ``should_stop()`` is true.
        """

    @abstractmethod
    def next_token_logits(self, input_ids: Tensor, media: Mapping[str, Tensor]) -> Tensor:
        """Raw logits ``[V]`` for the token after the prompt (parity tests, scoring)."""

    def answer_logprobs(self, input_ids: Tensor, media: Mapping[str, Tensor], answer_ids: Tensor) -> Tensor:
        """Log-probabilities ``[K]`` of the answer tokens ``answer_ids`` ``[K]`` following the prompt
        ``input_ids`` ``[L]``, each given every token before it (teacher-forced, raw logits): what an explanation
        measures an answer by (:mod:`multimodal.explain`) and what log-likelihood scoring sums
        (:mod:`multimodal.bench.likelihood`)."""
        return token_logprobs(self.answer_logits(input_ids, media, answer_ids), answer_ids.reshape(-1))

    def answer_logits(self, input_ids: Tensor, media: Mapping[str, Tensor], answer_ids: Tensor) -> Tensor:
        """Raw next-token logits ``[K, V]`` at each answer position, teacher-forced as in :meth:`answer_logprobs`
        (row ``k`` predicts ``answer_ids[k]``): the whole distribution, which logit distillation reads
        (``recipes/distill_llm``)."""
        from ..errors import ScoringUnsupportedError

        raise ScoringUnsupportedError(f"The {self.name} backend cannot score log-likelihoods; the transformers and "
                                      "llama.cpp backends can (--backend transformers or --backend llamacpp).")

    def sequence_logits(self, input_ids: Tensor) -> Tensor:
        """Raw next-token logits ``[L, V]`` at every position of a text-only sequence ``input_ids`` ``[L]``, read
        from an empty cache: what perplexity and the KL divergence between two forms of one model compare
        (``benchmarks/compression.py``)."""
        from ..errors import ScoringUnsupportedError

        raise ScoringUnsupportedError(f"The {self.name} backend cannot return full logits; the transformers and "
                                      "llama.cpp backends can.")

    def describe(self) -> str:
        return self.name


def token_logprobs(logits: Tensor, targets: Tensor) -> Tensor:
    """``log softmax(logits)[k, targets[k]]`` ``[K]`` for next-token ``logits`` ``[K, V]`` (in fp32)."""
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.reshape(-1, 1).long()).squeeze(-1)


def text_pieces(tokenizer, ids: Iterable[int]) -> Iterator[str]:
    """Decode a stream of token ids into text pieces as they arrive.

    The whole answer is re-decoded at each token and only the new suffix is
    yielded, held back while it ends in an incomplete UTF-8 sequence (a
    character split across byte-level tokens decodes to U+FFFD).
    """
    generated: list[int] = []
    shown = ""
    for token in ids:
        generated.append(token)
        text = tokenizer.decode(generated, skip_special_tokens=True)
        if text.endswith("\ufffd") or len(text) <= len(shown):
            continue
        yield text[len(shown):]
        shown = text
    text = tokenizer.decode(generated, skip_special_tokens=True)
    if len(text) > len(shown):
        yield text[len(shown):]
