"""Output valid by construction: a choice among options, and JSON values for a schema.

Small local models write broken JSON often enough that a tool call must not rest
on hope. Here the LLM never writes the syntax: MedAny writes the braces, keys,
quotes and commas, and the model writes only the values, each under a constraint
(greedy: at every step the likeliest token the constraint allows):

- a **choice** (a tool name, an enum value, a boolean) follows the options' tokens:
  the likeliest token that continues some option, until one option is left;
- a **string** is written with tokens that hold no line break until the model closes
  the quote (``minLength``/``maxLength`` respected), then escaped by :func:`json.dumps`;
- a **number** is written with digit tokens (a leading minus, one decimal point for
  ``number``) until the model would rather end it (a token starting with ``,`` ``}``
  ``]`` or white space beats every digit), then clamped to ``minimum``/``maximum``;
- an **array** ends when the model would rather write ``]`` than ``,`` (within
  ``minItems``/``maxItems``, at most :data:`MAX_ITEMS`); an **object** writes its
  required properties in order, then the optional ones the model chooses (a choice
  among the remaining keys and ``}``).

:func:`check_schema` refuses up front, naming the keyword, what this cannot
guarantee (``pattern``, ``anyOf``, ``$ref``, ``format``, a type list), so a schema
that is accepted is always met. Every step asks the backend for the next token's
logits (``next_token_logits``); the llama.cpp backend keeps the shared prefix in its
cache, so a step decodes only the new tokens.

Letters: V vocabulary.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Mapping, Sequence

import torch

from .cancel import checkpoint

MAX_STRING_CHARS = 200
MAX_NUMBER_TOKENS = 12
MAX_ITEMS = 8
MAX_DEPTH = 4
_IGNORED = frozenset({"description", "title", "additionalProperties", "default", "examples", "$schema", "strict",
                      "nullable"})  # "nullable" (OpenAPI, smolagents): a value of the type is valid anyway
_KEYWORDS = {"object": {"type", "properties", "required"}, "string": {"type", "enum", "minLength", "maxLength"},
             "integer": {"type", "enum", "minimum", "maximum"}, "number": {"type", "enum", "minimum", "maximum"},
             "boolean": {"type"}, "array": {"type", "items", "minItems", "maxItems"}}


class SchemaError(ValueError):
    """A JSON schema uses something constrained decoding cannot guarantee; ``where`` is its JSON path."""

    def __init__(self, message: str, where: str):
        super().__init__(f"{where}: {message}")
        self.where = where


def check_schema(schema, where: str = "$", depth: int = 0) -> None:
    """Raise :class:`SchemaError` unless every value ``schema`` describes can be written under a constraint."""
    if not isinstance(schema, dict):
        raise SchemaError("a schema must be an object", where)
    if depth > MAX_DEPTH:
        raise SchemaError(f"schemas nest at most {MAX_DEPTH} levels", where)
    kind = schema.get("type", "string" if "enum" in schema else None)
    if "enum" in schema:
        values = schema["enum"]
        scalars = isinstance(values, list) and all(isinstance(v, (str, int, float, bool)) for v in values)
        if not values or not scalars:
            raise SchemaError("'enum' must be a non-empty list of strings, numbers or booleans", where)
    if not isinstance(kind, str) or kind not in _KEYWORDS:
        raise SchemaError(f"unsupported type {kind!r} (supported: {', '.join(_KEYWORDS)}; one type per value)",
                          where)
    unknown = sorted(set(schema) - _KEYWORDS[kind] - _IGNORED)
    if unknown:
        raise SchemaError(f"unsupported keyword {unknown[0]!r} for a {kind}", where)
    if kind == "object":
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            raise SchemaError("'properties' must be an object", where)
        required = schema.get("required", [])
        if not isinstance(required, list) or any(r not in props for r in required):
            raise SchemaError("'required' must list properties of this object", where)
        for name, prop in props.items():
            check_schema(prop, f"{where}.{name}", depth + 1)
    elif kind == "array":
        check_schema(schema.get("items", {"type": "string"}), f"{where}[]", depth + 1)
        low, high = schema.get("minItems", 0), schema.get("maxItems", MAX_ITEMS)
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high and low <= MAX_ITEMS):
            raise SchemaError(f"minItems/maxItems must be integers with minItems <= maxItems, minItems <= "
                              f"{MAX_ITEMS}", where)
    elif kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", MAX_STRING_CHARS)
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= min(high, MAX_STRING_CHARS)):
            raise SchemaError(f"minLength must be at most maxLength and {MAX_STRING_CHARS}", where)


class Constrained:
    """Constrained steps over one prompt (token ids with media sentinels, and the media's features)."""

    def __init__(self, backend, prompt_ids: torch.Tensor, media: Mapping[str, torch.Tensor] | None = None):
        self.backend, self.media = backend, dict(media or {})
        self.ids: list[int] = [int(t) for t in prompt_ids.reshape(-1).tolist()]
        self.tokenizer = backend.tokenizer
        self.pieces = token_pieces(self.tokenizer)
        self.masks = masks(self.tokenizer)
        self.steps = 0
        """How many times the backend was asked for logits."""

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def append(self, text: str) -> None:
        """Write ``text`` (syntax MedAny decides) after what is there."""
        self.ids += self.encode(text)

    def logits(self, extra: Sequence[int] = ()) -> torch.Tensor:
        """Next-token logits ``[V]`` after the current ids (and ``extra``); a stopped request stops here."""
        checkpoint()
        self.steps += 1
        return self.backend.next_token_logits(torch.tensor(self.ids + list(extra)), self.media).float()

    def best(self, allowed: torch.Tensor, logits: torch.Tensor | None = None) -> int:
        """The likeliest token among ``allowed`` (``[V]`` booleans) after the current ids."""
        logits = self.logits() if logits is None else logits
        return int(torch.where(allowed, logits[:allowed.numel()], -math.inf).argmax())

    def choose(self, options: Sequence[str]) -> str:
        """The option the model writes when only the options may be written; it is appended."""
        if not options:
            raise ValueError("choose() needs at least one option.")
        tokens = {option: self.encode(option) for option in dict.fromkeys(options)}
        prefix: list[int] = []
        while True:
            alive = [o for o, t in tokens.items() if t[:len(prefix)] == prefix]
            ended = [o for o in alive if len(tokens[o]) == len(prefix)]
            going = {tokens[o][len(prefix)] for o in alive if len(tokens[o]) > len(prefix)}
            if len(alive) == 1 or not going:
                choice = alive[0] if len(alive) == 1 else ended[0]
                break
            logits = self.logits(prefix)
            if ended:  # an option ends here while longer ones go on: the model's end-of-value decides
                ending = self.top(logits, self.masks["ends"])
                if ending >= max(float(logits[t]) for t in going):
                    choice = ended[0]
                    break
            prefix.append(max(going, key=lambda t: float(logits[t])))
        self.ids += tokens[choice]
        return choice

    def top(self, logits: torch.Tensor, mask: torch.Tensor) -> float:
        """The highest logit among the tokens of ``mask`` (``-inf`` for an empty mask)."""
        return float(logits[:mask.numel()][mask].max()) if bool(mask.any()) else -math.inf

    def string(self, min_chars: int = 0, max_chars: int = MAX_STRING_CHARS) -> str:
        """A string value, the opening quote already written; what the model wrote is replaced by the value's
        JSON (its escapes normalised) and the closing quote."""
        start, text = len(self.ids), ""
        while len(text) < max_chars:
            token = self.best(self.masks["line"] if len(text) >= min_chars else self.masks["open_line"])
            piece = self.pieces[token]
            end = _closing_quote(piece, escaped=(len(text) - len(text.rstrip("\\"))) % 2 == 1)
            if end is not None:  # the model closed the string: keep what came before the quote
                text += piece[:end]
                break
            text += piece
            self.ids.append(token)
        text = text[:max_chars]
        try:
            value = json.loads(f'"{text}"')  # the model's own escapes (\n, \")
        except json.JSONDecodeError:
            value = text
        if len(value) < min_chars:
            value = text
        del self.ids[start:]
        self.append(json.dumps(value, ensure_ascii=False)[1:])
        return value

    def number(self, integer: bool, minimum: float | None = None, maximum: float | None = None) -> int | float:
        """A number value (digits, a leading minus, one decimal point unless ``integer``), clamped to the bounds;
        what the model wrote is replaced by the value's JSON."""
        m, start, text = self.masks, len(self.ids), ""
        for _ in range(MAX_NUMBER_TOKENS):
            logits = self.logits()
            allowed = m["digits"].clone()
            if not text and (minimum is None or minimum < 0):
                allowed |= m["minus"]
            if not integer and text.strip("-") and "." not in text:
                allowed |= m["point"]
            token = self.best(allowed, logits)
            if text.strip("-") and self.top(logits, m["ends"]) > float(logits[token]):
                break  # the model would rather end the number here
            text += self.pieces[token]
            self.ids.append(token)
        digits = text.rstrip(".")
        value: float = float(digits) if digits.strip("-") else 0.0
        if minimum is not None:
            value = max(value, minimum)
        if maximum is not None:
            value = min(value, maximum)
        value = int(value) if integer else value
        del self.ids[start:]
        self.append(json.dumps(value))
        return value

    def value(self, schema: dict, depth: int = 0):
        """A JSON value for ``schema`` (checked by :func:`check_schema`), written after the current ids."""
        kind = schema.get("type", "string" if "enum" in schema else None)
        if "enum" in schema:
            return json.loads(self.choose([json.dumps(v, ensure_ascii=False) for v in schema["enum"]]))
        if kind == "boolean":
            return self.choose(["true", "false"]) == "true"
        if kind in ("integer", "number"):
            return self.number(kind == "integer", schema.get("minimum"), schema.get("maximum"))
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, depth)
        self.append('"')
        return self.string(schema.get("minLength", 0), min(schema.get("maxLength", MAX_STRING_CHARS),
                                                           MAX_STRING_CHARS))

    def object(self, schema: dict, depth: int = 0) -> dict:
        """``{"required": value, ...}``: the required properties in schema order, then the optional ones the
        model chooses to write (any order, each once) until it would rather close the object."""
        props = schema.get("properties", {})
        required = [n for n in props if n in schema.get("required", [])]
        optional = [n for n in props if n not in required]
        out: dict = {}
        self.append("{")
        for name in required:
            self.append(("" if not out else ", ") + json.dumps(name) + ": ")
            out[name] = self.value(props[name], depth + 1)
        while optional:
            keys = {("" if not out else ", ") + json.dumps(n) + ": ": n for n in optional}
            pick = self.choose([*keys, "}"])
            if pick == "}":
                return out
            name = keys[pick]
            optional.remove(name)
            out[name] = self.value(props[name], depth + 1)
        self.append("}")
        return out

    def array(self, schema: dict, depth: int = 0) -> list:
        """``[item, ...]`` with between ``minItems`` and ``maxItems`` (at most :data:`MAX_ITEMS`) items; past
        ``minItems`` the model decides whether another one follows."""
        items = schema.get("items", {"type": "string"})
        low, high = schema.get("minItems", 0), min(schema.get("maxItems", MAX_ITEMS), MAX_ITEMS)
        out: list = []
        self.append("[")
        while len(out) < high:
            if len(out) >= low:
                if out and self.choose([", ", "]"]) == "]":
                    return out
                if not out and self.pieces[self.best(self.masks["any"])].lstrip().startswith("]"):
                    self.append("]")
                    return out
            elif out:
                self.append(", ")
            out.append(self.value(items, depth + 1))
        self.append("]")
        return out


def fill_arguments(step: Constrained, schema: dict) -> dict:
    """A tool call's arguments: the JSON object ``schema`` describes (:meth:`Constrained.object`)."""
    return step.object(schema)


@lru_cache(maxsize=4)
def token_pieces(tokenizer) -> tuple[str, ...]:
    """The text of every token id alone (cached per tokenizer)."""
    return tuple(tokenizer.decode([i]) for i in range(len(tokenizer)))


_ENDS = re.compile(r"^[\s,}\]]")


@lru_cache(maxsize=4)
def masks(tokenizer) -> dict[str, torch.Tensor]:
    """Per tokenizer, the tokens each constraint allows (``[V]`` booleans)."""
    pieces = token_pieces(tokenizer)
    line = torch.tensor([p != "" and "\n" not in p and "\r" not in p for p in pieces])
    quote = torch.tensor(['"' in p for p in pieces])
    return {"line": line, "open_line": line & ~quote,
            "digits": torch.tensor([p != "" and p.isascii() and p.isdigit() for p in pieces]),
            "point": torch.tensor([p == "." for p in pieces]), "minus": torch.tensor([p == "-" for p in pieces]),
            "ends": torch.tensor([bool(_ENDS.match(p)) for p in pieces]), "any": torch.ones_like(line)}


def _closing_quote(piece: str, escaped: bool = False) -> int | None:
    """Where the first unescaped ``"`` of ``piece`` is (``escaped``: the text before ends in a backslash)."""
    backslashes = 1 if escaped else 0
    for i, c in enumerate(piece):
        if c == '"' and backslashes % 2 == 0:
            return i
        backslashes = backslashes + 1 if c == "\\" else 0
    return None
