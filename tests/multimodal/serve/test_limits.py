"""Issue 13: the API's limits bound the work, the deadline stops it, and the HTTP layer cannot be held open."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from tests.multimodal.serve import serve_helpers as h
from tests.multimodal.serve.test_errors import envelope, post, wait_for


def _raw(url: str, payload: bytes, read_s: float = 10.0) -> bytes:
    """Send raw bytes to the server at ``url`` and return what it answers before closing (or ``read_s``)."""
    host, port = url.split("//")[1].rsplit(":", 1)
    with socket.create_connection((host.strip("[]"), int(port)), timeout=read_s) as s:
        s.sendall(payload)
        chunks = []
        try:
            while data := s.recv(65536):
                chunks.append(data)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def test_a_prompt_beyond_the_context_is_refused_before_any_work(http, serve_assistant):
    context = serve_assistant.backend.context_length
    r = post(http, h.chat_body("word " * (2 * context)))
    err = envelope(r, 400, "context_length_exceeded", "messages")
    assert str(context) in err["message"]


def test_too_many_messages_are_refused(http):
    body = {"model": "medany", "messages": [{"role": "user", "content": "hi"}] * 1000, "max_tokens": 2}
    envelope(post(http, body), 413, "too_many_messages", "messages")


def test_total_audio_per_request_is_bounded(serve_assistant):
    clip = h.wav_bytes(1.5)
    with h.running(serve_assistant, max_audio_s_per_request=2.0) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        one = post(client, h.chat_body([h.audio_part(clip), {"type": "text", "text": "hi"}]))
        assert one.status_code == 200, one.text
        two = post(client, h.chat_body([h.audio_part(clip), h.audio_part(clip), {"type": "text", "text": "hi"}]))
        err = envelope(two, 413, "too_large")
        assert "2 s" in err["message"] or "0.0 minutes" not in err["message"]


def test_the_deadline_stops_transcription_not_only_decoding(serve_assistant):
    """Whisper's decoder is slowed to 50 ms a step (~6 s for this 2-minute clip); the deadline is 1 s."""
    long_clip = h.wav_bytes(120.0)
    steps = []
    slow = serve_assistant.speech.whisper_model().decoder.register_forward_pre_hook(
        lambda *_: steps.append(time.sleep(0.05)))
    try:
        with h.running(serve_assistant, request_timeout_s=1.0) as server, \
                httpx.Client(base_url=server.url, timeout=60) as client:
            t0 = time.monotonic()
            envelope(post(client, h.chat_body([h.audio_part(long_clip), {"type": "text", "text": "hi"}])), 504,
                     "timeout")
            wait_for(lambda: not client.get("/health").json()["queue"]["busy"], timeout_s=30)
            assert time.monotonic() - t0 < 3.0, "the worker kept transcribing past the deadline"
            assert len(steps) < 60  # of the ~120 decoder steps the whole clip takes
    finally:
        slow.remove()


def test_a_non_streaming_client_that_leaves_stops_its_generation_and_is_audited(serve_assistant, tmp_path):
    slow = h.scripted(serve_assistant, h.words(100), delay_s=0.05)  # ~5 s of answer
    audit = tmp_path / "audit.jsonl"
    with h.running(slow, audit_log=str(audit)) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        body = json.dumps(h.chat_body("hi", max_tokens=200)).encode()
        host = server.url.split("//")[1]
        request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        t0 = time.monotonic()
        _raw(server.url, request, read_s=0.5)  # leaves after half a second
        wait_for(lambda: audit.exists() and audit.read_text().strip(), timeout_s=10)
        line = json.loads(audit.read_text().splitlines()[-1])
        assert line["status"] == 499 and line["code"] == "client_closed"
        wait_for(lambda: not client.get("/health").json()["queue"]["busy"], timeout_s=10)
        assert time.monotonic() - t0 < 3.0, "generation ran on after the client left"


def test_a_lone_surrogate_is_a_client_mistake_not_a_500(http):
    raw = b'{"model": "medany", "max_tokens": 2, "messages": [{"role": "user", "content": "hi \\ud800"}]}'
    r = http.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    envelope(r, 400, "invalid_json")


def test_a_foreign_host_header_is_refused(http, live):
    port = live.url.rsplit(":", 1)[1]
    for good in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert http.get("/v1/models", headers={"Host": good}).status_code == 200, good
    for bad in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
        envelope(http.get("/v1/models", headers={"Host": bad}), 421, "invalid_host")


def test_allowed_hosts_can_be_configured(serve_assistant):
    with h.running(serve_assistant, allowed_hosts=("medany.internal",)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/v1/models", headers={"Host": "medany.internal:8000"}).status_code == 200
        envelope(client.get("/v1/models", headers={"Host": "other.internal"}), 421, "invalid_host")


def test_content_length_with_chunked_encoding_is_refused(live):
    host = live.url.split("//")[1]
    body = json.dumps(h.chat_body("hi")).encode()
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    answer = _raw(live.url, (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n"
                             f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                             "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode() + chunked)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]


@pytest.mark.parametrize("stall", ["headers", "body"])
def test_slow_or_short_requests_do_not_hold_a_connection(serve_assistant, stall):
    with h.running(serve_assistant, header_timeout_s=1.0, body_timeout_s=1.0) as server:
        host = server.url.split("//")[1]
        if stall == "headers":
            payload = f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n".encode()  # never ends
        else:
            payload = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                       "Content-Length: 1000\r\n\r\n{\"model\"").encode()  # 8 of 1000 bytes
        t0 = time.monotonic()
        answer = _raw(server.url, payload, read_s=15.0)
        assert time.monotonic() - t0 < 5.0, "the server kept the connection open"
        if stall == "body":
            assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
