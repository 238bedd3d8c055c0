"""Tools the assistant (or any OpenAI or MCP client) can call: a typed function, its JSON schema, its checks.

``@tool`` turns a function whose first parameter is the :class:`ToolContext` into a
:class:`Tool`: the JSON schema of its arguments comes from its signature and the
``Args:`` section of its docstring, and :meth:`Tool.call` checks the arguments a
model or client sends against that schema (typed errors, never a traceback)
before running it. :data:`TOOLS` is the registry, in registration order.
"""

from __future__ import annotations

import inspect
import json
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from ..cli_args import doc_args
from ..errors import InputError

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


class ToolError(InputError):
    """A tool was called wrongly (unknown name, arguments that do not fit its schema) or could not answer."""

    code = "tool_error"


@dataclass
class ToolContext:
    """What a tool may use: the knowledge base, a speech model (a Transcriber), and the request's decoded media."""

    knowledge: Any = None
    speech: Any = None
    images: list = field(default_factory=list)
    audios: list = field(default_factory=list)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict
    fn: Callable[..., dict]

    def openai(self) -> dict:
        """The tool as OpenAI's ``tools`` list writes it."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters}}

    def call(self, arguments: dict | str, context: ToolContext) -> dict:
        """Run the tool with ``arguments`` (a dict or its JSON), checked against the schema first."""
        args = check_arguments(self, arguments)
        return self.fn(context, **args)


TOOLS: dict[str, Tool] = {}


def tool(fn: Callable[..., dict]) -> Callable[..., dict]:
    """Register ``fn(context, **args) -> dict`` as a tool named after it."""
    TOOLS[fn.__name__] = Tool(fn.__name__, inspect.getdoc(fn).split("\n\n")[0].replace("\n", " "),
                              schema_of(fn), fn)
    return fn


def schema_of(fn: Callable) -> dict:
    """The JSON schema (an object) of ``fn``'s parameters after the context."""
    hints = typing.get_type_hints(fn)
    helps = doc_args(fn)
    props, required = {}, []
    for p in list(inspect.signature(fn).parameters.values())[1:]:
        hint = hints.get(p.name, str)
        prop: dict = {}
        if typing.get_origin(hint) is Literal:
            prop["type"], prop["enum"] = "string", list(typing.get_args(hint))
        else:
            prop["type"] = _JSON_TYPES.get(hint, "string")
        if helps.get(p.name):
            prop["description"] = helps[p.name].replace("%%", "%")
        if p.default is inspect.Parameter.empty:
            required.append(p.name)
        else:
            prop["default"] = p.default
        props[p.name] = prop
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def describe_result(result: dict) -> str:
    """A tool's result as one evidence line: its rows with their citations (``[ICD-10 G44.209] Tension-type
    headache ...``), a food's nutrients for the portion, or its fields; ``no match`` / ``error: ...``."""
    from ..knowledge.sources import FOOD_COLUMNS

    if "error" in result:
        return f"error: {result['error']}"
    if "results" not in result:
        return "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.items() if v not in (None, "", []))
    if result.get("no_match") or not result["results"]:
        return "no match: the knowledge base has nothing for this"
    units = dict(FOOD_COLUMNS)
    rows = []
    for r in result["results"]:
        line = f"[{r['citation']}] {r['name']}"
        if "nutrients" in r:
            amounts = ", ".join(f"{v:g} {units.get(k, k)}" for k, v in r["nutrients"].items())
            line += f", {r['grams']:g} g: {amounts}"
        elif r.get("detail"):
            line += f" ({r['detail']})"
        rows.append(line)
    if result.get("diseases"):
        diseases = "; ".join(f"[{d['citation']}] {d['name']}" for d in result["diseases"])
        rows.append(f"diseases with the first: {diseases}")
    return "; ".join(rows)


def check_arguments(t: Tool, arguments: dict | str) -> dict:
    """``arguments`` as keyword arguments of ``t``, or :class:`ToolError` naming what does not fit."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            raise ToolError(f"The arguments of {t.name} are not valid JSON.") from None
    if not isinstance(arguments, dict):
        raise ToolError(f"The arguments of {t.name} must be a JSON object.")
    props, out = t.parameters["properties"], {}
    unknown = set(arguments) - set(props)
    if unknown:
        raise ToolError(f"{t.name} takes no {', '.join(sorted(unknown))}.")
    for name in t.parameters["required"]:
        if name not in arguments:
            raise ToolError(f"{t.name} needs {name}.")
    for name, value in arguments.items():
        kind = props[name]["type"]
        ok = {"string": isinstance(value, str), "boolean": isinstance(value, bool),
              "integer": isinstance(value, int) and not isinstance(value, bool),
              "number": isinstance(value, (int, float)) and not isinstance(value, bool)}[kind]
        if not ok or ("enum" in props[name] and value not in props[name]["enum"]):
            raise ToolError(f"{t.name}: {name} must be {' or '.join(map(str, props[name].get('enum', [kind])))}.")
        if isinstance(value, str) and len(value) > 500:
            raise ToolError(f"{t.name}: {name} is too long (at most 500 characters).")
        out[name] = float(value) if kind == "number" else value
    return out
