"""OpenAI tool calling and JSON answers through the official ``openai`` client, against live servers.

A scripted model (:mod:`tests.scripted`) plays a clinician's assistant that calls
``icd10_lookup`` when it has no result yet and answers from the result when it has
one; the tiny random model shows that whatever a model wants, the calls and the
JSON it gets back parse and match their schemas.
"""

from __future__ import annotations

import json

import pytest

from tests.multimodal.serve import serve_helpers as h
from tests.multimodal.test_structured import meets

openai = pytest.importorskip("openai")

ICD = {"type": "function", "function": {
    "name": "icd10_lookup", "description": "Find ICD-10-CM codes for a diagnosis.",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                   "required": ["query"]}}}
DRUG = {"type": "function", "function": {
    "name": "drug_lookup", "description": "Find a drug by name.",
    "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}
RESULT = json.dumps({"results": [{"citation": "ICD-10 G44.209", "name": "Tension-type headache, unspecified, "
                                  "not intractable"}]})
QUESTION = "Which ICD-10 code is a tension headache?"


def clinician(prompt: str) -> list[str]:
    """Calls the lookup (twice when asked about two things) until a result is in the prompt, then answers."""
    if "Tool icd10_lookup:" in prompt:
        return ["The code is ", "G44.209 ", "[ICD-10 G44.209]."]
    if "# Tools" not in prompt:
        return ["I can only guess without tools."]
    call = '<tool_call>\n{"name": "icd10_lookup", "arguments": {"query": "tension headache"}}\n</tool_call>'
    if "and naproxen" in prompt:
        return [call, '\n<tool_call>\n{"name": "drug_lookup", "arguments": {"name": "naproxen"}}\n</tool_call>']
    return [call]


@pytest.fixture(scope="module")
def server(serve_assistant):
    with h.running(h.scripted(serve_assistant, clinician)) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def random_client(live):
    return openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def user(text: str = QUESTION) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_the_model_calls_a_tool_and_answers_from_its_result(client):
    r = client.chat.completions.create(model="medany", messages=user(), tools=[ICD, DRUG])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "icd10_lookup"
    assert json.loads(call.function.arguments) == {"query": "tension headache"}  # optional "limit" left out
    assert r.usage.completion_tokens > 0

    messages = user() + [choice.message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": RESULT}]
    final = client.chat.completions.create(model="medany", messages=messages, tools=[ICD, DRUG])
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == "The code is G44.209 [ICD-10 G44.209]."
    report = final.model_extra["medany"]
    assert any(e["source"] == "tool" and "G44.209" in e["text"] for e in report["evidence"])
    assert report["grounding"]["ok"]  # the citation is the tool's row


def test_a_citation_no_tool_returned_is_flagged(client, serve_assistant):
    messages = user() + [{"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
        "name": "icd10_lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"results": []}'}]
    r = client.chat.completions.create(model="medany", messages=messages, tools=[ICD], stream=True)
    text, report = "", None
    for c in r:
        report = c.model_extra.get("medany") or report
        text += "".join(ch.delta.content or "" for ch in c.choices)
    assert "[ICD-10 G44.209]" in text and not report["grounding"]["ok"]
    assert report["grounding"]["issues"][0]["kind"] == "citation"


def test_tool_calls_stream_as_deltas(client):
    stream = client.chat.completions.create(model="medany", messages=user(QUESTION + " and naproxen?"),
                                            tools=[ICD, DRUG], stream=True)
    calls, finish = {}, None
    for c in stream:
        for ch in c.choices:
            for d in ch.delta.tool_calls or []:
                calls.setdefault(d.index, {"name": "", "arguments": ""})
                calls[d.index]["name"] += d.function.name or ""
                calls[d.index]["arguments"] += d.function.arguments or ""
            finish = ch.finish_reason or finish
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("icd10_lookup", {"query": "tension headache"}), ("drug_lookup", {"name": "naproxen"})]


def test_one_call_at_a_time_when_asked_and_none_means_none(client):
    r = client.chat.completions.create(model="medany", messages=user(QUESTION + " and naproxen?"),
                                       tools=[ICD, DRUG], parallel_tool_calls=False)
    assert [c.function.name for c in r.choices[0].message.tool_calls] == ["icd10_lookup"]
    r = client.chat.completions.create(model="medany", messages=user(), tools=[ICD], tool_choice="none")
    assert r.choices[0].finish_reason == "stop" and not r.choices[0].message.tool_calls
    assert r.choices[0].message.content == "I can only guess without tools."


def test_a_json_answer_is_what_the_model_writes_under_the_schema(client):
    schema = {"type": "object", "properties": {"code": {"type": "string"}, "billable": {"type": "boolean"}},
              "required": ["code", "billable"]}
    r = client.chat.completions.create(
        model="medany", messages=user() + [
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                                  "function": {"name": "icd10_lookup", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": RESULT}],
        response_format={"type": "json_schema", "json_schema": {"name": "code", "schema": schema}})
    value = json.loads(r.choices[0].message.content)
    assert meets(value, schema)


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "drug_lookup"}}])
def test_any_model_makes_a_valid_call_when_one_is_required(random_client, choice):
    r = random_client.chat.completions.create(model="medany", messages=user(), tools=[ICD, DRUG],
                                              tool_choice=choice)
    (call, *_) = r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason == "tool_calls"
    spec = {"icd10_lookup": ICD, "drug_lookup": DRUG}[call.function.name]
    assert meets(json.loads(call.function.arguments), spec["function"]["parameters"])
    if isinstance(choice, dict):
        assert call.function.name == "drug_lookup"


def test_any_model_writes_valid_json_for_a_schema(random_client):
    schema = {"type": "object", "required": ["foods", "kcal", "advice"], "properties": {
        "foods": {"type": "array", "items": {"type": "string", "maxLength": 20}, "minItems": 1, "maxItems": 3},
        "kcal": {"type": "number", "minimum": 0, "maximum": 5000}, "advice": {"enum": ["eat", "avoid"]}}}
    for stream in (False, True):
        r = random_client.chat.completions.create(
            model="medany", messages=user("What is in this meal?"), stream=stream,
            response_format={"type": "json_schema", "json_schema": {"name": "meal", "schema": schema}})
        text = "".join(c.choices[0].delta.content or "" for c in r if c.choices) if stream else \
            r.choices[0].message.content
        assert meets(json.loads(text), schema)
