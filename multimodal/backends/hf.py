"""The transformers backend: HF ``generate`` on a :class:`~multimodal.model.MedAnyModel`.

The reference and the training path: any Hugging Face causal LM, hub id, local
directory or de-quantized GGUF, media spliced with one ``masked_scatter`` per
modality and image spans attending bidirectionally (our attention function).
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Mapping

import torch
from torch import Tensor

from .base import Backend, GenerationSettings, context_length, stop_token_ids, token_logprobs


class TransformersBackend(Backend):
    """Generates with ``model.llm`` (a transformers causal LM) through ``model.generate``."""

    name = "transformers"

    def __init__(self, model):
        self.model = model
        self.tokenizer = model.tokenizer
        self.hidden_size = model.llm.get_input_embeddings().embedding_dim
        self.stop_ids = stop_token_ids(self.tokenizer, getattr(model.llm, "generation_config", None))
        self.context_length = context_length(model.llm.config, self.tokenizer)

    def generate_ids(self, input_ids: Tensor, media: Mapping[str, Tensor], settings: GenerationSettings,
                     should_stop: Callable[[], bool] | None = None) -> Iterator[int]:
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        tokens: queue.Queue = queue.Queue()
        done = object()

        class Tokens(BaseStreamer):
            def put(self, value):  # the prompt arrives first, empty when we pass embeddings
                for t in value.flatten().tolist():
                    tokens.put(int(t))

            def end(self):
                tokens.put(done)

        class Stop(StoppingCriteria):
            def __call__(self, ids, scores, **kwargs):
                return torch.full((ids.shape[0],), bool(should_stop and should_stop()), dtype=torch.bool,
                                  device=ids.device)

        errors: list[BaseException] = []
        ids = input_ids.reshape(1, -1).to(self.model.device)  # [1, L]

        def run():
            try:
                self.model.generate_from(ids, media, streamer=Tokens(), eos_token_id=sorted(self.stop_ids),
                                         stopping_criteria=StoppingCriteriaList([Stop()]), **settings.hf_kwargs())
            except BaseException as exc:  # surfaced in the caller's thread below
                errors.append(exc)
                tokens.put(done)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        while (token := tokens.get()) is not done:
            if should_stop and should_stop():
                break  # generation may have run ahead of a slow caller: yield nothing more once told to stop
            if token in self.stop_ids:
                continue  # HF emits the EOS it stopped at
            yield token
        thread.join()  # the Stop criterion ends generation at its next step
        if errors:
            raise errors[0]

    @torch.no_grad()
    def next_token_logits(self, input_ids: Tensor, media: Mapping[str, Tensor]) -> Tensor:
        ids = input_ids.reshape(1, -1).to(self.model.device)  # [1, L]
        return self.model.logits_from(ids, media)[0, -1].float().cpu()  # [V]

    def answer_logprobs(self, input_ids: Tensor, media: Mapping[str, Tensor], answer_ids: Tensor) -> Tensor:
        """Teacher-forced log-probabilities ``[K]``; differentiable in ``media`` when grad is enabled."""
        answer = answer_ids.reshape(-1).to(input_ids.device)
        return token_logprobs(self.answer_logits(input_ids, media, answer), answer)

    def answer_logits(self, input_ids: Tensor, media: Mapping[str, Tensor], answer_ids: Tensor) -> Tensor:
        """Teacher-forced next-token logits ``[K, V]``; differentiable in ``media`` when grad is enabled."""
        prompt = input_ids.reshape(-1)
        answer = answer_ids.reshape(-1).to(prompt.device)
        ids = torch.cat([prompt, answer])[None]  # [1, L + K]
        return self.model.logits_from(ids, media)[0, prompt.numel() - 1:-1]  # [K, V]: each predicts the next

    @torch.no_grad()
    def sequence_logits(self, input_ids: Tensor) -> Tensor:
        ids = input_ids.reshape(1, -1).to(self.model.device)  # [1, L]
        return self.model.logits_from(ids, {})[0].float().cpu()  # [L, V]
