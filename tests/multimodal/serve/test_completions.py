"""The completion itself: SSE framing on the wire, and the real model stopping when asked."""

from __future__ import annotations

import json

from multimodal.io.limits import DEFAULT_LIMITS
from multimodal.serve.completions import chat_work, chunk
from multimodal.serve.schema import ChatRequest
from tests.multimodal.serve import serve_helpers as h


def test_sse_framing_on_the_wire(http):
    with http.stream("POST", "/v1/chat/completions", json=h.chat_body("hi", stream=True, max_tokens=3)) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        raw = r.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    objs = [json.loads(e[len("data: "):]) for e in events[:-2]]
    assert all(e.startswith("data: ") and "\n" not in e for e in events[:-1])
    assert {o["id"] for o in objs} == {r.headers["x-request-id"]}
    assert objs[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert objs[-1]["choices"][0]["finish_reason"] == "length" and objs[-1]["choices"][0]["delta"] == {}
    assert 1 <= len(objs) - 2 <= 3  # content chunks in between, at most max_tokens
    assert "usage" not in objs[-1]  # only with stream_options.include_usage


def test_usage_chunk_shape():
    from multimodal.serve.completions import Usage

    c = chunk("id", 1, "m", usage=Usage(5, 2))
    assert c["choices"] == [] and c["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def test_the_real_model_stops_between_tokens(serve_assistant):
    request = ChatRequest("medany", "Tell me a long story.", max_tokens=64)
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) >= 3

    pieces = chat_work(serve_assistant, request, DEFAULT_LIMITS)(should_stop)
    out = []
    try:
        while True:
            out.append(next(pieces))
    except StopIteration as stop:
        usage = stop.value
    assert usage.completion_tokens <= 4 < 64 and usage.finish_reason == "stop"
    assert usage.prompt_tokens > 0
