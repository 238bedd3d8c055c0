"""Bounded load: 200 requests from 16 concurrent clients over loopback, none lost, none mixed up.

Each question carries a unique nonce and the scripted model answers with the
nonce it finds in its own prompt, so a response matching its request proves
the request's text went through validation, the queue, the prompt and the
stream back to the right client. Every fourth request also carries an image
(decoded concurrently with the model work), half of them stream.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.multimodal.serve import serve_helpers as h

openai = pytest.importorskip("openai")

REQUESTS = 200
CLIENTS = 16


def test_200_requests_from_16_clients(echo):
    client = openai.OpenAI(base_url=echo.url + "/v1", api_key="unused", max_retries=0, timeout=60)
    png = h.png_bytes(16)
    before = len(h.audit_lines(echo))

    def one(i: int) -> tuple[str, str, str, int]:
        nonce = f"nonce-{uuid.uuid4().hex[:16]}"
        content = [{"type": "text", "text": f"Request {i}: repeat {nonce}."}]
        if i % 4 == 0:
            content.append(h.image_part(png))
        kwargs = dict(model="medany", max_tokens=8, messages=[{"role": "user", "content": content}])
        if i % 2:
            chunks = list(client.chat.completions.create(stream=True, **kwargs))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert chunks[-1].choices[0].finish_reason == "stop"
            assert len({c.id for c in chunks}) == 1
            return nonce, text, chunks[0].id, 200
        with_raw = client.chat.completions.with_raw_response.create(**kwargs)
        r = with_raw.parse()
        assert r.choices[0].finish_reason == "stop" and r.usage.completion_tokens == 4
        return nonce, r.choices[0].message.content, r.id, with_raw.status_code

    t0 = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(one, range(REQUESTS)))
    elapsed = time.monotonic() - t0

    assert len(results) == REQUESTS
    for nonce, text, _, status in results:
        assert status == 200
        assert text == f"echo {nonce} done"  # complete, and this request's own answer
    ids = {rid for _, _, rid, _ in results}
    assert len(ids) == REQUESTS
    lines = [x for x in h.audit_lines(echo)[before:] if x["request_id"] in ids]
    assert len(lines) == REQUESTS and all(x["status"] == 200 for x in lines)
    assert elapsed < 60, f"{REQUESTS} requests took {elapsed:.1f} s"
