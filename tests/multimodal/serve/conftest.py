"""Fixtures: the tiny stack loaded once, served live on loopback ports."""

from __future__ import annotations

import pytest

from tests.multimodal.serve import serve_helpers as h


@pytest.fixture(scope="session")
def serve_assistant():
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant

    return Assistant.load(StackConfig(**h.TINY))


@pytest.fixture(scope="session")
def live(serve_assistant, tmp_path_factory):
    """The real tiny stack behind a live server, auditing to a file; yields the RunningServer."""
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with h.running(serve_assistant, audit_log=str(audit), max_request_bytes=2 * h.MiB) as server:
        server.audit_path = audit
        yield server


@pytest.fixture(scope="session")
def echo(serve_assistant, tmp_path_factory):
    """A server whose model answers 'echo <nonce> done' for the nonce in the question."""
    audit = tmp_path_factory.mktemp("audit") / "echo.jsonl"
    with h.running(h.scripted(serve_assistant, h.echo_nonce), audit_log=str(audit), queue_size=32) as server:
        server.audit_path = audit
        yield server


@pytest.fixture
def http(live):
    import httpx

    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client
