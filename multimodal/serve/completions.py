"""One chat completion: the work the queue runs, and its answer as OpenAI objects.

:func:`chat_work` turns a validated request into the generator the worker
thread drives (the assistant's token stream, stoppable between tokens);
:func:`completion` and :func:`chunk` shape the result like OpenAI's
``chat.completion`` and ``chat.completion.chunk``; :func:`sse` frames one
server-sent event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterator

from .schema import ChatRequest

DONE = b"data: [DONE]\n\n"


@dataclass
class Usage:
    """Token counts and why generation ended (``"stop"`` or ``"length"``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"

    def as_dict(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


def chat_work(assistant, request: ChatRequest, images, audios):
    """The queue's work for ``request``: yields answer pieces, returns its :class:`Usage`."""

    def work(should_stop: Callable[[], bool]) -> Iterator[str]:
        overrides = {"should_stop": should_stop}
        if request.max_tokens is not None:
            overrides["max_new_tokens"] = request.max_tokens
        if request.temperature is not None:
            overrides["temperature"] = float(request.temperature)
        yield from assistant.stream(request.question, images=images, audios=audios, **overrides)
        t = assistant.last_timings  # only this worker thread uses the assistant
        budget = request.max_tokens or assistant.config.max_new_tokens
        return Usage(t.prompt_tokens, t.new_tokens, "length" if t.new_tokens >= budget else "stop")

    return work


def completion(request_id: str, created: int, model: str, text: str, usage: Usage) -> dict:
    """A non-streamed ``chat.completion`` object."""
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                     "logprobs": None, "finish_reason": usage.finish_reason}],
        "usage": usage.as_dict(),
        "system_fingerprint": None,
    }


def chunk(request_id: str, created: int, model: str, delta: dict | None = None, finish_reason: str | None = None,
          usage: Usage | None = None) -> dict:
    """A ``chat.completion.chunk``; with ``usage`` it is the final usage-only chunk (no choices)."""
    choices = [] if usage is not None else [{"index": 0, "delta": delta or {}, "logprobs": None,
                                             "finish_reason": finish_reason}]
    out = {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model,
           "choices": choices, "system_fingerprint": None}
    if usage is not None:
        out["usage"] = usage.as_dict()
    return out


def sse(obj: dict) -> bytes:
    """One server-sent event carrying ``obj`` as JSON."""
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
