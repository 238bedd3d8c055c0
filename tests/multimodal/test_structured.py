"""Constrained decoding: the model writes values, MedAny writes the syntax, the result meets the schema."""

from __future__ import annotations

import json

import pytest
import torch

from multimodal.structured import Constrained, SchemaError, check_schema

MEAL = {"type": "object", "properties": {"food": {"type": "string"}, "grams": {"type": "integer", "maximum": 2000},
                                         "note": {"type": "string"}},
        "required": ["food", "grams"]}


class Wanting:
    """A backend that wants to write ``target`` after the prompt: the token continuing it most scores highest."""

    def __init__(self, tokenizer, prompt_len: int, target: str):
        self.tokenizer, self.prompt_len, self.target = tokenizer, prompt_len, target
        self.pieces = [tokenizer.decode([i]) for i in range(len(tokenizer))]

    def next_token_logits(self, ids, media):
        written = self.tokenizer.decode(ids.tolist()[self.prompt_len:])
        logits = torch.zeros(len(self.pieces))
        if self.target.startswith(written):
            rest = self.target[len(written):]
            for i, piece in enumerate(self.pieces):
                if piece and rest.startswith(piece):
                    logits[i] = 10.0 + len(piece)
        return logits


class RandomModel:
    """The tiny random LLM's own next-token logits: a model with no idea what JSON is."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    @torch.no_grad()
    def next_token_logits(self, ids, media):
        return self.model(ids.reshape(1, -1)).logits[0, -1]


def wanting(tiny_llm, target: str) -> Constrained:
    _, tok = tiny_llm
    prompt = torch.tensor(tok("Answer:", add_special_tokens=False)["input_ids"])
    return Constrained(Wanting(tok, len(prompt), target), prompt)


def written(step: Constrained, tiny_llm, prompt: str = "Answer:") -> str:
    _, tok = tiny_llm
    return tok.decode(step.ids[len(tok(prompt, add_special_tokens=False)["input_ids"]):])


def test_the_model_writes_the_values_it_wants(tiny_llm):
    step = wanting(tiny_llm, '{"food": "banana", "grams": 120}')
    assert step.object(MEAL) == {"food": "banana", "grams": 120}  # "note" is optional: not wanted, not written
    assert written(step, tiny_llm) == '{"food": "banana", "grams": 120}'


def test_optional_properties_are_written_when_the_model_wants_them(tiny_llm):
    step = wanting(tiny_llm, '{"food": "banana", "grams": 150, "note": "ripe"}')
    assert step.object(MEAL) == {"food": "banana", "grams": 150, "note": "ripe"}
    optional = {"type": "object", "properties": {"grams": {"type": "integer"}, "note": {"type": "string"}}}
    assert wanting(tiny_llm, '{"note": "ripe", "grams": 5}').object(optional) == {"note": "ripe", "grams": 5}
    assert wanting(tiny_llm, '{"grams": 5}').object(optional) == {"grams": 5}
    assert wanting(tiny_llm, '{}').object(optional) == {}


def test_bounds_clamp_a_number_and_an_escape_is_kept_as_json(tiny_llm):
    meal = {**MEAL, "properties": {k: v for k, v in MEAL["properties"].items() if k != "note"}}
    step = wanting(tiny_llm, '{"food": "a \\"big\\" pie", "grams": 5000}')
    assert step.object(meal) == {"food": 'a "big" pie', "grams": 2000}
    assert json.loads(written(step, tiny_llm)) == {"food": 'a "big" pie', "grams": 2000}


def test_a_choice_follows_the_options_tokens(tiny_llm):
    step = wanting(tiny_llm, 'nutrient_lookup"')
    assert step.choose(['icd10_lookup"', 'nutrient_lookup"', 'nutrient_table"']) == 'nutrient_lookup"'
    # where one option is a prefix of another, the model's end of the value decides
    assert wanting(tiny_llm, "1, ").choose(["1", "10"]) == "1"
    assert wanting(tiny_llm, "10, ").choose(["1", "10"]) == "10"


def test_enums_booleans_and_arrays(tiny_llm):
    schema = {"type": "object", "required": ["kind", "urgent", "foods"],
              "properties": {"kind": {"enum": ["drug", "food"]}, "urgent": {"type": "boolean"},
                             "foods": {"type": "array", "items": {"type": "string"}, "maxItems": 3}}}
    step = wanting(tiny_llm, '{"kind": "food", "urgent": false, "foods": ["rice", "dal"]}')
    assert step.object(schema) == {"kind": "food", "urgent": False, "foods": ["rice", "dal"]}
    step = wanting(tiny_llm, '{"kind": "food", "urgent": true, "foods": ["a", "b", "c", "d", "e"]}')
    assert step.object(schema)["foods"] == ["a", "b", "c"]  # maxItems, whatever the model wanted


@pytest.mark.parametrize("schema", [
    MEAL,
    {"type": "object", "required": ["n", "x", "tags"], "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 9}, "x": {"type": "number"},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1, "maxItems": 2}}},
    {"type": "object", "required": ["inner"], "properties": {"inner": MEAL}},
])
def test_a_random_model_still_writes_valid_json(tiny_llm, schema):
    model, tok = tiny_llm
    check_schema(schema)
    backend = RandomModel(model, tok)
    prompt = torch.tensor(tok("Answer:", add_special_tokens=False)["input_ids"])
    step = Constrained(backend, prompt)
    value = step.object(schema)
    assert json.loads(written(step, tiny_llm)) == value
    assert meets(value, schema)


def meets(value, schema) -> bool:
    """A small validator for the supported subset (the test's oracle)."""
    if "enum" in schema:
        return value in schema["enum"]
    kind = schema["type"]
    if kind == "object":
        return set(schema.get("required", [])) <= set(value) <= set(schema["properties"]) and all(
            meets(value[k], schema["properties"][k]) for k in value)
    if kind == "array":
        return (schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", 8)
                and all(meets(v, schema["items"]) for v in value))
    if kind in ("integer", "number"):
        ok = isinstance(value, int) if kind == "integer" else isinstance(value, (int, float))
        return ok and schema.get("minimum", -1e18) <= value <= schema.get("maximum", 1e18)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, str) and "\n" not in value


@pytest.mark.parametrize("schema,where,what", [
    ({"type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}}}, "$.a", "pattern"),
    ({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}]}}}, "$.a", "type"),
    ({"type": "object", "properties": {"a": {"type": ["string", "null"]}}}, "$.a", "type"),
    ({"type": "object", "properties": {}, "required": ["b"]}, "$", "required"),
    ({"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 2}, "$", "minItems"),
    ("not a schema", "$", "object"),
])
def test_what_cannot_be_guaranteed_is_refused_by_name(schema, where, what):
    with pytest.raises(SchemaError, match=what) as info:
        check_schema(schema)
    assert info.value.where == where
