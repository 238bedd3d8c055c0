"""``medany agent``: a bounded tool loop whose answer is held to what the tools found.

The scripted model (:mod:`tests.scripted`) looks up a food and a drug, one step at a
time, then answers from the results; the loop, the tools, the evidence and the
grounding check are the real ones, over a small knowledge base built here.
"""

from __future__ import annotations

import logging

import pytest

from multimodal.agent import run_agent
from multimodal.config import StackConfig
from multimodal.pipeline import Assistant
from tests.multimodal.knowledge.kb_helpers import build_small
from tests.multimodal.serve import serve_helpers as h

FOOD = '<tool_call>\n{"name": "nutrient_lookup", "arguments": {"food": "banana", "grams": 150}}\n</tool_call>'
DRUG = '<tool_call>\n{"name": "drug_lookup", "arguments": {"name": "Aleve"}}\n</tool_call>'
ANSWER = "A 150 g banana has 133.5 kcal [USDA FDC 173944], and Aleve is naproxen [DrugBank DB00788]."


def dietitian(prompt: str) -> list[str]:
    if "Tool nutrient_lookup:" not in prompt:
        return [FOOD]
    if "Tool drug_lookup:" not in prompt:
        return [DRUG]
    return [ANSWER]


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    path = tmp_path_factory.mktemp("kb") / "kb.sqlite"
    build_small(path)
    return Assistant.load(StackConfig(**{**h.TINY, "knowledge": str(path), "max_new_tokens": 64}))


def test_the_agent_looks_things_up_then_answers_with_citations(assistant, caplog):
    caplog.set_level(logging.INFO, logger="medany.agent")
    seen = []
    run = run_agent(h.scripted(assistant, dietitian), "How many calories are in 150 g of banana, and what is Aleve?",
                    on_step=seen.append)
    assert [(s.tool, s.arguments) for s in run.steps] == [("nutrient_lookup", {"food": "banana", "grams": 150.0}),
                                                           ("drug_lookup", {"name": "Aleve"})]
    assert seen == run.steps and run.stopped == "answered"
    assert run.steps[0].result["results"][0]["nutrients"]["energy_kcal"] == pytest.approx(133.5)
    answer = run.done.answer
    assert answer.text == ANSWER and answer.grounding.ok and not answer.revised
    lines = [e.line for e in answer.evidence if e.source == "tool"]
    assert lines[0].startswith("Tool nutrient_lookup: [USDA FDC 173944] banana, 150 g: 133.5 kcal")
    assert lines[1].startswith("Tool drug_lookup: [DrugBank DB00788] Naproxen")
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "nutrient_lookup(food, grams)" in logged and "banana" not in logged and "Aleve" not in logged


def test_a_number_no_tool_gave_is_caught(assistant):
    def wrong(prompt):
        return [FOOD] if "Tool nutrient_lookup:" not in prompt else ["A 150 g banana has 212 kcal."]

    run = run_agent(h.scripted(assistant, wrong), "Calories in 150 g of banana?")
    assert run.done.answer.revised  # the draft quoted a number the table does not give


@pytest.mark.parametrize("script,stopped,steps", [
    (lambda prompt: [FOOD], "repeated", 1),  # asks again for what it has
    (lambda prompt: ['<tool_call>\n{"name": "drug_lookup", "arguments": {"name": "drug %d"}}\n</tool_call>'
                     % prompt.count("Tool drug_lookup:")], "max_steps", 3),
])
def test_the_loop_is_bounded(assistant, script, stopped, steps):
    run = run_agent(h.scripted(assistant, script), "Tell me everything.", max_steps=3)
    assert run.stopped == stopped and len(run.steps) == steps and run.done.answer is not None


def test_the_time_limit_stops_the_lookups_not_the_answer(assistant):
    run = run_agent(h.scripted(assistant, dietitian), "Calories?", max_seconds=0.0)
    assert run.stopped == "max_seconds" and run.steps == [] and run.done.answer is not None


def test_only_the_named_tools_are_offered_and_a_wrong_call_is_reported(assistant):
    run = run_agent(h.scripted(assistant, dietitian), "Calories?", tools=["drug_lookup"], max_steps=1)
    assert {s.tool for s in run.steps} <= {"drug_lookup"}
    from multimodal.tools.registry import ToolError

    with pytest.raises(ToolError, match="Unknown tool"):
        run_agent(assistant, "x", tools=["rm_rf"])
