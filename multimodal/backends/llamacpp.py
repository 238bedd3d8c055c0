"""The llama.cpp backend: a GGUF LLM run natively (quantized) on the CPU, fed media as embeddings.

The prompt is decoded in consecutive batches with continuing positions: text
runs as token ids, media runs as the projected feature rows themselves
(``llama_batch.embd``; with the model's own embedding rows this gives exactly
the logits of the token batch). An image run is decoded with causal attention
switched off, so its tokens attend to each other in both directions and to the
text before them, while text stays causal: the same image-span rule as the
transformers path (``docs/attention.md``). Audio runs stay causal, as there.

Token choice is the shared HF logits-processor path (:mod:`.base`), so greedy
decoding, repetition penalty, temperature and top-p mean the same here as in
HF ``generate``. The previous prompt stays in the KV cache and its leading part is
reused when the next prompt starts the same way: the same tokens, and media runs with
the same feature rows (constrained decoding asks for logits after each token it writes,
so a JSON answer about an image decodes one token a step, not the whole prompt).

One context serves one request at a time (a lock); ``medany serve`` already
runs requests one by one.

Letters: L prompt length, T media tokens of one kind, D LLM width (n_embd), V vocabulary.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np
import torch
from torch import Tensor

from ..cancel import checkpoint
from ..errors import ModelLoadError, PlaceholderMismatchError, PromptError, PromptTooLongError, require
from ..template import MEDIA_TOKEN_IDS
from .base import Backend, GenerationSettings, choose_token, logits_processors, stop_token_ids, token_logprobs

_KIND_OF_ID = {v: k for k, v in MEDIA_TOKEN_IDS.items()}
BIDIRECTIONAL = ("image",)


def prompt_runs(input_ids: list[int]) -> list[tuple[str, int, int]]:
    """``[(kind, start, stop)]``: maximal runs of text (``"text"``) or of one modality's sentinels."""
    runs: list[tuple[str, int, int]] = []
    for i, t in enumerate(input_ids):
        kind = _KIND_OF_ID.get(t, "text")
        if runs and runs[-1][0] == kind:
            runs[-1] = (kind, runs[-1][1], i + 1)
        else:
            runs.append((kind, i, i + 1))
    return runs


class LlamaCppBackend(Backend):
    """A GGUF file loaded by llama-cpp-python; ``tokenizer`` is the same GGUF's HF tokenizer."""

    name = "llama.cpp"

    def __init__(self, gguf: str | Path, tokenizer, *, n_ctx: int = 4096, threads: int = 0, batch: int = 512):
        self.lib = require("llama_cpp", "all")
        threads = threads or os.cpu_count() or 1
        try:
            # use_mmap=False: llama.cpp repacks quantized weights for the CPU into memory of its own; with the
            # file mapped, the pages read for that stay resident too (1.5B: 2.5 GB RSS instead of 1.9 GB).
            self.llama = self.lib.Llama(model_path=str(gguf), n_ctx=n_ctx, n_batch=batch, n_ubatch=batch,
                                        n_threads=threads, n_threads_batch=threads, use_mmap=False, verbose=False)
        except ValueError as exc:
            raise ModelLoadError(f"llama.cpp could not load '{Path(gguf).name}': {exc}") from exc
        self.tokenizer = tokenizer
        self.n_ctx, self.batch, self.threads = n_ctx, batch, threads
        self.context_length = n_ctx
        self.hidden_size = int(self.lib.llama_model_n_embd(self.llama.model))
        self.n_vocab = int(self.lib.llama_vocab_n_tokens(self.lib.llama_model_get_vocab(self.llama.model)))
        self.stop_ids = stop_token_ids(tokenizer)
        self._tokens = self.lib.llama_batch_init(batch, 0, 1)
        self._embeds = self.lib.llama_batch_init(batch, self.hidden_size, 1)
        self._lock = threading.Lock()
        self._cached: list[int] = []  # token ids (media sentinels included) at positions 0.. whose KV cells are current
        self._cached_media: dict[str, np.ndarray] = {}  # the feature rows of the cached media runs, in order

    def __del__(self):
        lib = getattr(self, "lib", None)
        for name in ("_tokens", "_embeds"):
            batch = self.__dict__.pop(name, None)
            if lib is not None and batch is not None:
                lib.llama_batch_free(batch)

    def describe(self) -> str:
        return f"llama.cpp {self.lib.__version__} ({self.threads} threads, context {self.n_ctx})"

    # -- decoding ---------------------------------------------------------------------

    def _decode(self, batch, n: int, pos: int, want_logits: bool, every_logit: bool = False) -> None:
        batch.n_tokens = n
        for i in range(n):
            batch.pos[i] = pos + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = every_logit or (want_logits and i == n - 1)
        rc = self.lib.llama_decode(self.llama.ctx, batch)
        if rc != 0:
            raise ModelLoadError(f"llama.cpp could not decode the prompt (llama_decode returned {rc}).")

    def _decode_tokens(self, ids: list[int], pos: int, want_logits: bool) -> None:
        for start in range(0, len(ids), self.batch):
            checkpoint()  # a long prefill stops at the request's deadline, between batches
            chunk = ids[start:start + self.batch]
            for i, t in enumerate(chunk):
                self._tokens.token[i] = t
            self._decode(self._tokens, len(chunk), pos + start, want_logits and start + len(chunk) == len(ids))

    def _decode_embeds(self, rows: np.ndarray, pos: int, want_logits: bool, bidirectional: bool) -> None:
        n = rows.shape[0]
        if bidirectional and n > self.batch:
            raise PromptError(f"An image span of {n} tokens exceeds the llama.cpp batch ({self.batch}); "
                              "it must be decoded in one batch to attend bidirectionally.")
        for start in range(0, n, self.batch):
            chunk = np.ascontiguousarray(rows[start:start + self.batch], dtype=np.float32)  # [n, D], kept alive
            ctypes.memmove(self._embeds.embd, chunk.ctypes.data, chunk.nbytes)
            if bidirectional:
                self.lib.llama_set_causal_attn(self.llama.ctx, False)
            try:
                self._decode(self._embeds, chunk.shape[0], pos + start,
                             want_logits and start + chunk.shape[0] == n)
            finally:
                if bidirectional:
                    self.lib.llama_set_causal_attn(self.llama.ctx, True)

    def _logits(self, i: int = -1) -> Tensor:
        ptr = self.lib.llama_get_logits_ith(self.llama.ctx, i)
        return torch.from_numpy(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy())  # [V]

    def _prefill(self, input_ids: Tensor, media: Mapping[str, Tensor], budget: int) -> int:
        """Decode the prompt into the KV cache; returns its length (the next position)."""
        ids = input_ids.reshape(-1).tolist()
        if len(ids) + budget > self.n_ctx:
            raise PromptTooLongError.of(len(ids), budget, self.n_ctx)
        rows = {k: v.detach().float().cpu().numpy() for k, v in (media or {}).items()}
        for kind, sentinel in MEDIA_TOKEN_IDS.items():
            slots, given = ids.count(sentinel), (rows[kind].shape[0] if kind in rows else 0)
            if slots != given:
                raise PlaceholderMismatchError(
                    f"The prompt reserves {slots} {kind} token(s) but the {kind} inputs produced {given}.")
            if given and rows[kind].shape[1] != self.hidden_size:
                raise PromptError(f"The {kind} features are {rows[kind].shape[1]}-d but the LLM takes "
                                  f"{self.hidden_size}-d inputs.")
        runs = prompt_runs(ids)
        keep = self._reusable_prefix(ids, runs, rows)
        self.lib.llama_memory_seq_rm(self.lib.llama_get_memory(self.llama.ctx), 0, keep, -1)
        self._cached = ids[:keep]  # what the cache holds if decoding fails below (its media rows are unchanged)
        used = {kind: 0 for kind in rows}
        for kind, start, stop in runs:
            last = stop == len(ids)
            if kind == "text":
                if stop > keep:
                    begin = max(start, keep)
                    self._decode_tokens(ids[begin:stop], begin, last)
                continue
            n = stop - start
            if stop > keep:  # a media run is reused whole or decoded whole (:meth:`_reusable_prefix`)
                self._decode_embeds(rows[kind][used[kind]:used[kind] + n], start, last, kind in BIDIRECTIONAL)
            used[kind] += n
        self._cached = ids
        self._cached_media = {kind: np.array(r[:used[kind]]) for kind, r in rows.items()}
        return len(ids)

    def _reusable_prefix(self, ids: list[int], runs, rows: Mapping[str, np.ndarray]) -> int:
        """How many leading positions of the cached prompt this prompt shares: its tokens, and its media runs
        when their feature rows are the same. A media run is reused whole or not at all (an image run is one
        bidirectional batch), and at least one position is decoded again (its logits are the answer)."""
        same = 0
        for a, b in zip(self._cached, ids):
            if a != b:
                break
            same += 1
        same = min(same, len(ids) - 1)
        offsets: dict[str, int] = {}
        for kind, start, stop in runs:
            if start >= same:
                break
            if kind == "text":
                continue
            at, n = offsets.get(kind, 0), stop - start
            offsets[kind] = at + n
            old = self._cached_media.get(kind)
            if stop > same or old is None or len(old) < at + n or not np.array_equal(old[at:at + n],
                                                                                     rows[kind][at:at + n]):
                return start
        return same

    # -- Backend ----------------------------------------------------------------------

    def generate_ids(self, input_ids: Tensor, media: Mapping[str, Tensor], settings: GenerationSettings,
                     should_stop: Callable[[], bool] | None = None) -> Iterator[int]:
        with self._lock:
            pos = self._prefill(input_ids, media, settings.max_new_tokens)
            procs = logits_processors(settings)
            generated: list[int] = []
            while len(generated) < settings.max_new_tokens and not (should_stop and should_stop()):
                token = choose_token(self._logits(), generated, settings, procs)
                if token in self.stop_ids:
                    break
                generated.append(token)
                yield token
                if len(generated) < settings.max_new_tokens:
                    self._tokens.token[0] = token
                    self._decode(self._tokens, 1, pos, True)
                    pos += 1

    def next_token_logits(self, input_ids: Tensor, media: Mapping[str, Tensor]) -> Tensor:
        with self._lock:
            self._prefill(input_ids, media, 0)
            return self._logits()

    def answer_logprobs(self, input_ids: Tensor, media: Mapping[str, Tensor], answer_ids: Tensor) -> Tensor:
        """Teacher-forced log-probabilities ``[K]`` (from :meth:`answer_logits`)."""
        return token_logprobs(self.answer_logits(input_ids, media, answer_ids), answer_ids.reshape(-1))

    def answer_logits(self, input_ids: Tensor, media: Mapping[str, Tensor], answer_ids: Tensor) -> Tensor:
        """Teacher-forced next-token logits ``[K, V]``: the prompt is prefilled (its leading text reused from the
        cache), then the answer's tokens but the last decode in batches with every position's logits kept."""
        answer = answer_ids.reshape(-1).tolist()
        with self._lock:
            pos = self._prefill(input_ids, media, len(answer))
            rows = [self._logits()]  # predicts answer[0]
            for start in range(0, len(answer) - 1, self.batch):
                checkpoint()
                chunk = answer[start:min(start + self.batch, len(answer) - 1)]
                for i, t in enumerate(chunk):
                    self._tokens.token[i] = t
                self._decode(self._tokens, len(chunk), pos + start, True, every_logit=True)
                rows += [self._logits(i) for i in range(len(chunk))]
        return torch.stack(rows)  # [K, V]

    def sequence_logits(self, input_ids: Tensor) -> Tensor:
        ids = input_ids.reshape(-1).tolist()
        if len(ids) > self.n_ctx:
            raise PromptTooLongError.of(len(ids), 0, self.n_ctx)
        rows = []
        with self._lock:
            self.lib.llama_memory_seq_rm(self.lib.llama_get_memory(self.llama.ctx), 0, 0, -1)
            self._cached = []
            for start in range(0, len(ids), self.batch):
                checkpoint()
                chunk = ids[start:start + self.batch]
                for i, t in enumerate(chunk):
                    self._tokens.token[i] = t
                self._decode(self._tokens, len(chunk), start, True, every_logit=True)
                rows += [self._logits(i) for i in range(len(chunk))]
            self._cached = []  # positions past the text prompt hold these tokens: reuse nothing
        return torch.stack(rows)  # [L, V]
