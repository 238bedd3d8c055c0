"""One chat completion: the work the queue runs, and its answer as OpenAI objects.

:func:`chat_work` turns a validated request into the generator the worker
thread drives: the tool calls the model makes (:mod:`multimodal.calling`), a
JSON answer for a ``json_schema`` response format, or the assistant's token
stream, stoppable between tokens (a non-streamed answer is held to its evidence
and revised when it contradicts it, as in the demo);
:func:`completion` and :func:`chunk` shape the result like OpenAI's
``chat.completion`` and ``chat.completion.chunk``; :func:`sse` frames one
server-sent event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterator

from ..calling import call_tools, json_answer
from ..cancel import stoppable
from ..evidence import tool_evidence
from .schema import ChatRequest, decode_media

DONE = b"data: [DONE]\n\n"


@dataclass
class Usage:
    """Token counts, why generation ended (``"stop"`` or ``"length"``), and the answer's evidence report."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    report: dict | None = None
    """``{"evidence": [...], "grounding": {...}, "revised": bool}``: sent as the ``medany`` field."""
    tool_calls: list[dict] | None = None
    """OpenAI ``tool_calls`` entries when the model called tools (``finish_reason`` ``"tool_calls"``)."""

    def as_dict(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


def chat_work(assistant, request: ChatRequest, limits, max_audio_s: float | None = None):
    """The queue's work for ``request``: decodes its media, yields answer pieces, returns its :class:`Usage`.

    Media are decoded here, in the worker, when the request's turn comes: a request
    waiting in the queue holds only its encoded bytes, and only one medium is
    decoded at a time whatever the number of clients.
    """

    encoded = sum(m.size for m in request.media)

    def work(should_stop: Callable[[], bool]) -> Iterator[str]:
        try:
            return (yield from answer(should_stop))
        finally:
            if encoded > TRIM_AFTER_BYTES:
                return_freed_memory()

    def answer(should_stop: Callable[[], bool]) -> Iterator[str]:
        images, audios = decode_media(request, limits, max_audio_s)
        request.media = []  # decoded: free the encoded bytes
        context = [tool_evidence(name, content) for name, content in request.tool_results]
        tools = request.tools if request.tool_choice != "none" else ()
        if tools:
            with stoppable(should_stop):
                called = call_tools(assistant, assistant.request(request.question, images, audios, tools), context,
                                    "auto" if request.tool_choice == "function" else request.tool_choice,
                                    request.tool_name, request.parallel_tool_calls)
            if called.calls:
                return Usage(called.prompt_tokens, called.completion_tokens, "tool_calls",
                             tool_calls=[c.as_openai() for c in called.calls])
        if request.json_schema is not None:
            asked = assistant.request(request.question, images, audios, tools)
            with stoppable(should_stop):
                _, done, prompt, written = json_answer(assistant, asked, request.json_schema, context)
            yield done.text
            return Usage(prompt, written, "stop", report=evidence_report(done))
        overrides = {"should_stop": should_stop, "context": context, "tools": tools, "stop": request.stop}
        if request.max_tokens is not None:
            overrides["max_new_tokens"] = request.max_tokens
        if request.temperature is not None:
            overrides["temperature"] = float(request.temperature)
        if request.stream:  # streamed pieces cannot be taken back: the report says whether they keep to the evidence
            done = assistant.stream(request.question, images=images, audios=audios, **overrides)
            yield from done
        else:
            done = assistant.respond(request.question, images=images, audios=audios, guard=True, **overrides)
            yield done.answer.text
        t = done.timings
        budget = request.max_tokens or assistant.config.max_new_tokens
        return Usage(t.prompt_tokens, t.new_tokens, "length" if t.new_tokens >= budget else "stop",
                     report=evidence_report(done.answer))

    return work


TRIM_AFTER_BYTES = 4 * 2**20
"""After a request with more encoded media than this, freed heap pages go back to the OS."""


def return_freed_memory() -> None:
    """Hand the heap pages a large request freed back to the OS: glibc keeps them otherwise (idle RSS grew
    from 2.0 to 5.9 GB over a few large uploads). Costs a few milliseconds, so only after large media."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def evidence_report(answer) -> dict | None:
    """What an answer was held to: its evidence lines and the grounding check (``None`` without an answer)."""
    if answer is None:
        return None
    return {"evidence": [e.as_dict() for e in answer.evidence], "grounding": answer.grounding.as_dict(),
            "revised": answer.revised}


def completion(request_id: str, created: int, model: str, text: str, usage: Usage) -> dict:
    """A non-streamed ``chat.completion`` object (plus MedAny's ``medany`` evidence report)."""
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message(text, usage), "logprobs": None,
                     "finish_reason": usage.finish_reason}],
        "usage": usage.as_dict(),
        "system_fingerprint": None,
        "medany": usage.report,
    }


def message(text: str, usage: Usage) -> dict:
    """The assistant message of a non-streamed answer: its text, or the tools it calls."""
    if usage.tool_calls:
        return {"role": "assistant", "content": None, "tool_calls": usage.tool_calls, "refusal": None}
    return {"role": "assistant", "content": text, "refusal": None}


def chunk(request_id: str, created: int, model: str, delta: dict | None = None, finish_reason: str | None = None,
          usage: Usage | None = None, report: dict | None = None) -> dict:
    """A ``chat.completion.chunk``; with ``usage`` it is the final usage-only chunk (no choices).

    ``report`` (the finish chunk) adds MedAny's ``medany`` evidence report."""
    choices = [] if usage is not None else [{"index": 0, "delta": delta or {}, "logprobs": None,
                                             "finish_reason": finish_reason}]
    out = {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model,
           "choices": choices, "system_fingerprint": None}
    if usage is not None:
        out["usage"] = usage.as_dict()
    if report is not None:
        out["medany"] = report
    return out


def sse(obj: dict) -> bytes:
    """One server-sent event carrying ``obj`` as JSON."""
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
