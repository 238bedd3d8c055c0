"""A scripted stand-in for a loaded backend: readable answers from the tiny random stack.

The tiny random LLM only emits whitespace, which shows nothing in a page or an
API client. :class:`ScriptedBackend` keeps the rest of a request real (loading,
decoding, tools, prompt, queue, streaming) and replaces only the token source:
``script(prompt) -> pieces``, each piece one token, so a client sees exactly
those pieces arrive. It honours ``should_stop`` between tokens like the real backends.

Constrained decoding (tool calls, JSON answers: :mod:`multimodal.structured`) asks for
next-token logits instead; there the scripted model "wants" to write the script's
text: the token that continues it furthest scores highest.
"""

from __future__ import annotations

import threading
import time


class PieceTokenizer:
    """The real tokenizer, plus ids at or above :attr:`OFFSET` that decode to scripted pieces."""

    OFFSET = 10_000_000

    def __init__(self, tokenizer):
        self._tok = tokenizer
        self._pieces: list[str] = []
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._tok, name)

    def __len__(self) -> int:
        return len(self._tok)

    def __call__(self, *args, **kwargs):
        return self._tok(*args, **kwargs)

    def add(self, piece: str) -> int:
        with self._lock:
            self._pieces.append(piece)
            return self.OFFSET + len(self._pieces) - 1

    def decode(self, ids, **kwargs) -> str:
        ids = list(ids)
        if ids and all(i >= self.OFFSET for i in ids):
            return "".join(self._pieces[i - self.OFFSET] for i in ids)
        return self._tok.decode(ids, **kwargs)


ASSISTANT = "<|im_start|>assistant\n"
"""Where the answer starts in the tiny stack's chat template."""


class ScriptedBackend:
    """``backend`` with its token stream replaced by ``script(prompt) -> pieces``."""

    def __init__(self, backend, script, delay_s: float = 0.0, first_delay_s: float = 0.0):
        self._backend, self._script = backend, script
        self._delay_s, self._first_delay_s = delay_s, first_delay_s
        self.tokenizer = PieceTokenizer(backend.tokenizer)

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def next_token_logits(self, input_ids, media):
        import torch

        text = self._backend.tokenizer.decode([t for t in input_ids.reshape(-1).tolist() if t >= 0])
        at = text.rindex(ASSISTANT) + len(ASSISTANT)
        prompt, written = text[:at], text[at:]
        target = "".join(self._script(prompt))
        pieces = [self._backend.tokenizer.decode([i]) for i in range(len(self._backend.tokenizer))]
        logits = torch.zeros(len(pieces))
        if target.startswith(written):
            rest = target[len(written):]
            for i, piece in enumerate(pieces):
                if piece and rest.startswith(piece):
                    logits[i] = 10.0 + len(piece)
        return logits

    def generate_ids(self, input_ids, media, settings, should_stop=None):
        prompt = self._backend.tokenizer.decode([t for t in input_ids.reshape(-1).tolist() if t >= 0])
        time.sleep(self._first_delay_s)
        for piece in self._script(prompt):
            if should_stop and should_stop():
                return
            time.sleep(self._delay_s)
            yield self.tokenizer.add(piece)


def scripted(assistant, script, **delays):
    """A new Assistant sharing ``assistant``'s loaded models, answering with ``script``."""
    from multimodal.pipeline import Assistant

    return Assistant(assistant.model, assistant.config, vision=assistant.vision, speech=assistant.speech,
                     info=assistant.info, backend=ScriptedBackend(assistant.backend, script, **delays))
