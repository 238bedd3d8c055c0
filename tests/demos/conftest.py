"""Fixtures for the web demo: the tiny stack served on 127.0.0.1, and a client for it."""

from __future__ import annotations

import os
import socket

import pytest

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

TINY = dict(llm="tiny-random", vision="tiny_vit", speech="tiny_whisper", max_new_tokens=8, knowledge="none")
SCRIPTED_ANSWER = ("The film is a frontal chest radiograph. A radiologist would check the lungs, heart size, "
                   "mediastinum and bones. Please confirm any finding with a qualified clinician.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_assistant():
    pytest.importorskip("gradio")
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant

    return Assistant.load(StackConfig(**TINY))


@pytest.fixture(scope="session")
def demo_server(tiny_assistant, tmp_path_factory):
    """``(url, settings, demo)`` of the demo on a free loopback port with a 2 MiB upload limit."""
    from demos.app import build_demo, launch
    from demos.settings import DemoSettings

    settings = DemoSettings(port=free_port(), max_file_size=2 * 1024 * 1024, queue_size=8)
    demo = build_demo(tiny_assistant, settings=settings)
    _, url = launch(demo, settings, block=False)
    yield url, settings, demo
    demo.close()


@pytest.fixture
def client(demo_server):
    from gradio_client import Client

    return Client(demo_server[0], verbose=False)


def scripted_answer(assistant, text: str = SCRIPTED_ANSWER, delay_s: float = 0.04):
    """``assistant`` answering every question with ``text`` word by word, slowly (:mod:`tests.scripted`).

    The tiny random LLM only emits whitespace, which shows nothing in a page;
    this keeps the rest of the request real (loading, tools, prompt) and lets a
    browser see text arrive piece by piece.
    """
    from tests.scripted import scripted

    return scripted(assistant, lambda prompt: [w + " " for w in text.split(" ")], delay_s=delay_s)


@pytest.fixture(scope="session")
def demo_helpers():
    """The module's helpers for test files (test modules here are not an importable package)."""
    import types

    return types.SimpleNamespace(TINY=TINY, free_port=free_port, scripted_answer=scripted_answer)
