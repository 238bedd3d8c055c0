"""A team consult: routing by what the case holds, one agent per role, one merged answer held to all of them."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from multimodal.config import StackConfig
from multimodal.io.types import MedicalImage
from multimodal.pipeline import Assistant, Request
from multimodal.team import ROLES, merged, route, run_team
from tests.multimodal.knowledge.kb_helpers import build_small
from tests.multimodal.serve import serve_helpers as h

QUESTION = "How many calories are in 150 g of banana, and what is Aleve?"
MERGED = "A 150 g banana has 133.5 kcal [USDA FDC 173944]; Aleve is naproxen [DrugBank DB00788]."


def team_script(prompt: str) -> list[str]:
    """Each role looks its part up, then answers it; the coordinator (who reads the findings) merges them."""
    if "Pharmacy finding:" in prompt:
        return [MERGED]
    if "team's pharmacist" in prompt:
        if "Tool drug_lookup:" in prompt:
            return ["Aleve is naproxen [DrugBank DB00788]."]
        return ['<tool_call>\n{"name": "drug_lookup", "arguments": {"name": "Aleve"}}\n</tool_call>']
    if "team's dietitian" in prompt:
        if "Tool nutrient_lookup:" in prompt:
            return ["150 g of banana has 133.5 kcal [USDA FDC 173944]."]
        return ['<tool_call>\n{"name": "nutrient_lookup", "arguments": {"food": "banana", "grams": 150}}\n</tool_call>']
    return ["I cannot tell."]


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    path = tmp_path_factory.mktemp("kb") / "kb.sqlite"
    build_small(path)
    return Assistant.load(StackConfig(**{**h.TINY, "knowledge": str(path), "max_new_tokens": 64}))


def test_the_case_is_routed_by_what_it_holds(assistant):
    roles = route(assistant, Request(QUESTION))
    assert [(r.name, why) for r, why in roles] == [("nutrition", 'the case names "banana" (food)'),
                                                    ("pharmacy", 'the case names "Aleve" (drug)')]
    film = MedicalImage(np.zeros((32, 32, 3), np.float32), {"modality": "CR", "body_part": "CHEST"}, "dicom")
    assert [r.name for r, _ in route(assistant, Request("What next?", [film]))] == ["radiology"]
    assert [r.name for r, _ in route(assistant, Request("What is the weather?"))] == ["clinical"]
    assert set(ROLES["pharmacy"].tools) == {"drug_lookup"}


def test_each_role_uses_its_tools_and_the_merged_answer_keeps_to_all_of_them(assistant, caplog):
    caplog.set_level(logging.INFO, logger="medany.team")
    seen = []
    team = run_team(h.scripted(assistant, team_script), QUESTION, on_role=seen.append)
    assert [p.role.name for p in team.roles] == ["nutrition", "pharmacy"] and seen == team.roles
    assert [[s.tool for s in p.run.steps] for p in team.roles] == [["nutrient_lookup"], ["drug_lookup"]]
    assert all(p.run.prompt_tokens > 0 and p.run.completion_tokens > 0 and p.run.seconds > 0 for p in team.roles)
    answer = team.done.answer
    assert answer.text == MERGED and answer.grounding.ok
    lines = [e.line for e in merged(team.roles)]
    assert lines[0].startswith("Tool nutrient_lookup: [USDA FDC 173944]") and lines[-1].startswith("Pharmacy finding:")
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "team role pharmacy: 1 step(s)" in logged and "Aleve" not in logged and "banana" not in logged
