"""The smolagents example against a live ``medany serve``: the framework's own agent loop, our tool calls."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.multimodal.knowledge.kb_helpers import build_small
from tests.multimodal.serve import serve_helpers as h

pytest.importorskip("smolagents")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "smolagents_agent.py"


def example():
    spec = importlib.util.spec_from_file_location("smolagents_agent", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def coder(prompt: str) -> list[str]:
    """Looks the code up, then hands smolagents its final answer (as a call to its final_answer tool)."""
    if "G44.209" in prompt:
        return ['<tool_call>\n{"name": "final_answer", "arguments": {"answer": "G44.209 [ICD-10 G44.209]"}}'
                '\n</tool_call>']
    return ['<tool_call>\n{"name": "icd10_lookup", "arguments": {"query": "tension headache"}}\n</tool_call>']


def test_a_smolagents_tool_calling_agent_runs_on_medany_serve(tmp_path):
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant

    kb = build_small(tmp_path / "kb.sqlite")
    assistant = Assistant.load(StackConfig(**{**h.TINY, "max_new_tokens": 64}))
    scripted = h.scripted(assistant, coder)
    # smolagents' system prompt is ~4,500 characters: tokens for the tiny model's byte-level tokenizer (the
    # embedded Qwen reads it as ~1,100). The scripted model reads no context window, so give it a larger one.
    scripted.backend.context_length = 16384
    with h.running(scripted) as server:
        agent = example().build_agent(server.url + "/v1", kb)
        answer = agent.run("What is the ICD-10 code for a tension headache?")
    assert answer == "G44.209 [ICD-10 G44.209]"
    calls = [c.name for step in agent.memory.steps for c in (getattr(step, "tool_calls", None) or [])]
    assert calls == ["icd10_lookup", "final_answer"]
