"""Tool calls and JSON answers, valid by construction: OpenAI tool calling and ``response_format`` for any backend.

The LLM reads the tools as its chat template describes them (Qwen2.5's
``# Tools`` block, or the same words added to the system message:
:func:`~multimodal.template.encode_conversation`), after the request's evidence.
Then:

- **whether** it calls a tool is its own decision under ``tool_choice="auto"``: it
  writes freely (greedily) for a few tokens, and a start in any syntax models use for
  a call (``<tool_call>``, a ``json`` code fence, ``{``: Qwen2.5-Coder writes all of
  them) means a call, anything else an answer; what it wrote is then discarded.
  ``"required"`` and a named function make it call, ``"none"`` never asks;
- **which** tool: :meth:`~multimodal.structured.Constrained.choose` over the names;
- **the arguments**: :meth:`~multimodal.structured.Constrained.object` for the tool's
  ``parameters`` schema, so they always parse and always match it;
- **another** call follows (``parallel_tool_calls``) when, after a call is closed, the
  model's next token opens one again (at most :data:`MAX_PARALLEL`).

A JSON answer (``response_format={"type": "json_schema", ...}``) is written the same
way after a line that shows the model the schema; its text is held to the evidence
by the same grounding check as any answer (the report says whether it keeps to it).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Sequence

from . import grounding
from .structured import Constrained, SchemaError, check_schema
from .template import TOOL_CALL_CLOSE, TOOL_CALL_OPEN

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOOLS = 32
MAX_PARALLEL = 4
MAX_DESCRIPTION_CHARS = 1024
CALL_STARTS = ("<tool_call>", "```", "{", "<tools>", "<function")
"""How models start a tool call when left to write it themselves."""
DECIDE_TOKENS = 16
"""At most this many tokens decide (it stops as soon as the text can no longer start a call, or does)."""


class ToolSpecError(ValueError):
    """A tool definition that cannot be offered to the model; ``where`` names the field (``tools[1].function``)."""

    def __init__(self, message: str, where: str):
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class ToolCall:
    """One call the model made: an id the tool's result refers back to, the function and its arguments."""

    id: str
    name: str
    arguments: dict

    def as_openai(self, index: int | None = None) -> dict:
        """OpenAI's ``tool_calls`` entry (``index`` for a streamed delta)."""
        out = {"id": self.id, "type": "function",
               "function": {"name": self.name, "arguments": json.dumps(self.arguments, ensure_ascii=False)}}
        return out if index is None else {"index": index, **out}


@dataclass
class Called:
    """What a tool decision produced: the calls (empty: the model answers instead) and what it cost."""

    calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


def function_spec(tool, where: str = "tools[0]") -> dict:
    """A validated OpenAI tool definition, normalised to ``{"type": "function", "function": {name, description,
    parameters}}``; raises :class:`ToolSpecError` (or :class:`SchemaError` for its parameters) naming the field."""
    if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
        raise ToolSpecError("A tool must be {\"type\": \"function\", \"function\": {...}}.", where)
    fn = tool["function"]
    name = fn.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ToolSpecError("A function name must be 1-64 letters, digits, '_' or '-'.", f"{where}.function.name")
    description = fn.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS:
        raise ToolSpecError(f"A function description must be a string of at most {MAX_DESCRIPTION_CHARS} "
                            "characters.", f"{where}.function.description")
    parameters = fn.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
        raise ToolSpecError("A function's parameters must be a JSON schema of type 'object'.",
                            f"{where}.function.parameters")
    parameters = {"type": "object", **parameters}
    try:
        check_schema(parameters)
    except SchemaError as exc:
        raise SchemaError(str(exc).split(": ", 1)[-1], f"{where}.function.parameters{exc.where[1:]}") from None
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def function_specs(tools, where: str = "tools") -> tuple[dict, ...]:
    """Every tool of a request, validated (:func:`function_spec`); names must be unique."""
    if not isinstance(tools, list) or not 1 <= len(tools) <= MAX_TOOLS:
        raise ToolSpecError(f"'tools' must be a list of 1 to {MAX_TOOLS} tools.", where)
    specs = tuple(function_spec(t, f"{where}[{i}]") for i, t in enumerate(tools))
    names = [s["function"]["name"] for s in specs]
    if len(set(names)) != len(names):
        raise ToolSpecError("Tool names must be unique.", where)
    return specs


def call_tools(assistant, request, context: Sequence = (), choice: str = "auto", name: str | None = None,
               parallel: bool = True) -> Called:
    """The tool calls the model makes for ``request`` (its ``tools``); ``choice`` ``"auto"`` (the model decides)
    or ``"required"``; ``name`` forces that function. An empty :class:`Called` means: answer instead."""
    t0 = time.perf_counter()
    tools = {t["function"]["name"]: t["function"] for t in request.tools}
    if not tools or (name is not None and name not in tools):
        raise ToolSpecError(f"No tool named {name!r} was given." if name else "No tools were given.", "tool_choice")
    plan = assistant.plan(request, context)
    enc, media = assistant.encode_plan(request, plan)
    step = Constrained(assistant.backend, enc.input_ids, media)
    calls: list[ToolCall] = []
    while len(calls) < (MAX_PARALLEL if parallel and name is None else 1):
        must = not calls and (choice == "required" or name is not None)
        if not must and not wants_call(step, assistant.backend.stop_ids):
            break  # the model answers in words (or makes no further call)
        calls.append(_one_call(step, tools, name))
        step.append(TOOL_CALL_CLOSE + "\n")
    prompt = int(enc.input_ids.numel())
    return Called(calls, prompt, len(step.ids) - prompt if calls else 0, time.perf_counter() - t0)


def wants_call(step: Constrained, stop_ids) -> bool:
    """Whether the model, writing freely (greedily) from here, starts a tool call (:data:`CALL_STARTS`);
    what it wrote is taken back."""
    start, decided = len(step.ids), False
    for _ in range(DECIDE_TOKENS):
        token = step.best(step.masks["any"])
        if token in stop_ids:
            break
        step.ids.append(token)
        text = step.tokenizer.decode(step.ids[start:]).lstrip()
        if any(text.startswith(s) for s in CALL_STARTS):
            decided = True
            break
        if text and not any(s.startswith(text) for s in CALL_STARTS):
            break  # no call starts like this: an answer
    del step.ids[start:]
    return decided


def _one_call(step: Constrained, tools: dict, name: str | None) -> ToolCall:
    if name is None:
        step.append(TOOL_CALL_OPEN + '{"name": "')
        name = step.choose([f'{n}"' for n in tools])[:-1]
        step.append(', "arguments": ')
    else:
        step.append(TOOL_CALL_OPEN + '{"name": ' + json.dumps(name) + ', "arguments": ')
    arguments = step.object(tools[name]["parameters"])
    step.append("}")
    return ToolCall(f"call_{uuid.uuid4().hex[:24]}", name, arguments)


def json_answer(assistant, request, schema: dict, context: Sequence = (), correction: str | None = None):
    """The answer as the JSON value ``schema`` describes (checked with :func:`check_schema` first); ``correction``
    (:meth:`~multimodal.grounding.Grounding.correction`) follows the question on a second try.

    Returns ``(value, answer, prompt_tokens, completion_tokens)``; ``answer`` (:class:`~multimodal.pipeline.Answer`,
    also ``assistant.last_answer``) holds the JSON text, its evidence and its grounding check.
    """
    from .pipeline import Answer

    check_schema(schema)
    plan = replace(assistant.plan(request, context), json_schema=schema, correction=correction)
    enc, media = assistant.encode_plan(request, plan)
    step = Constrained(assistant.backend, enc.input_ids, media)
    value = step.value(schema)
    text = json.dumps(value, ensure_ascii=False)
    answer = assistant.last_answer = Answer(text, request, plan, grounding.check(text, plan.evidence, plan.question))
    prompt = int(enc.input_ids.numel())
    return value, answer, prompt, len(step.ids) - prompt
