"""Chat template rendering with media placeholders and label masking.

A user message may contain ``<image>`` and ``<audio>`` placeholders. We render
the conversation with the tokenizer's own chat template, split the text at the
placeholders, tokenize the text pieces and put a run of sentinel ids (negative,
so they can never collide with a vocabulary id) where each medium goes; the run
length is the number of tokens that medium's projector emits. The fusion model
later swaps the sentinels for projected features.

For training, ``labels`` keep only the assistant replies (and their end-of-turn
token); everything else is ``IGNORE_INDEX``.

Tools (OpenAI function specs) are rendered by the chat template itself when it
knows how (Qwen2.5, Hermes-style templates); for a template that ignores them the
same text is added to the system message (:func:`tools_block`). Either way the
model is told to call a tool as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

import torch

from .errors import PlaceholderMismatchError, PromptError

IGNORE_INDEX = -100
PLACEHOLDERS = {"image": "<image>", "audio": "<audio>"}
MEDIA_TOKEN_IDS = {"image": -200, "audio": -300}
_SPLIT = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS.values()) + ")")
_KIND_OF = {p: kind for kind, p in PLACEHOLDERS.items()}


@dataclass
class EncodedPrompt:
    """One tokenized conversation: ``input_ids`` ``[L]`` (with sentinels) and ``labels`` ``[L]``."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    text: str


def count_placeholders(messages: list[dict]) -> dict[str, int]:
    """How many ``<image>`` / ``<audio>`` placeholders the messages contain."""
    text = "".join(_content(m) for m in messages)
    return {kind: text.count(p) for kind, p in PLACEHOLDERS.items()}


TOOL_CALL_OPEN = "<tool_call>\n"
TOOL_CALL_CLOSE = "\n</tool_call>"


def tools_block(tools: list[dict]) -> str:
    """The system-message text that describes ``tools`` to a model whose chat template does not (Qwen2.5's words)."""
    specs = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return ("\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n"
            f"<tools>\n{specs}\n</tools>\n\n"
            "For each function call, return a json object with function name and arguments within "
            "<tool_call></tool_call> XML tags:\n"
            f'{TOOL_CALL_OPEN}{{"name": <function-name>, "arguments": <args-json-object>}}{TOOL_CALL_CLOSE}')


def encode_conversation(
    tokenizer,
    messages: list[dict],
    media_tokens: dict[str, list[int]] | None = None,
    *,
    add_generation_prompt: bool = True,
    tools: list[dict] | None = None,
) -> EncodedPrompt:
    """Tokenize ``messages`` (``[{"role", "content"}]``) with media sentinel runs.

    ``media_tokens[kind][i]`` is the token count of the i-th medium of that kind,
    in order of appearance. Raises :class:`PlaceholderMismatchError` when the
    placeholders and the media disagree. ``tools``: OpenAI function specs the
    model may call (see the module docstring).
    """
    media_tokens = {k: list(v) for k, v in (media_tokens or {}).items()}
    counts = count_placeholders(messages)
    for kind in PLACEHOLDERS:
        given = len(media_tokens.get(kind, []))
        if counts[kind] != given:
            raise PlaceholderMismatchError(
                f"The prompt has {counts[kind]} {PLACEHOLDERS[kind]} placeholder(s) "
                f"but {given} {kind} input(s) were given."
            )
    for m in messages:
        if m["role"] == "assistant" and _SPLIT.search(_content(m)):
            raise PromptError("Media placeholders may only appear in user or system messages.")

    # Message content is text, never control syntax: a typed "<|im_start|>" must not open a turn.
    messages = [{**m, "content": neutralize_control_tokens(tokenizer, _content(m))} for m in messages]
    tools = _neutralized(tokenizer, tools) if tools else None
    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)
    if tools and any(json.dumps(t["function"]["name"]) not in text for t in tools):  # the template ignored them
        if not messages or messages[0]["role"] != "system":
            messages = [{"role": "system", "content": ""}, *messages]
        messages = [{**messages[0], "content": messages[0]["content"] + tools_block(tools)}, *messages[1:]]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    spans = _assistant_spans(tokenizer, messages, text)

    ids: list[int] = []
    labels: list[int] = []
    pos = 0
    cursor = {kind: 0 for kind in PLACEHOLDERS}
    for piece in _SPLIT.split(text):
        if piece in _KIND_OF:
            kind = _KIND_OF[piece]
            n = media_tokens[kind][cursor[kind]]
            cursor[kind] += 1
            ids += [MEDIA_TOKEN_IDS[kind]] * n
            labels += [IGNORE_INDEX] * n
        elif piece:
            enc = tokenizer(piece, add_special_tokens=False, return_offsets_mapping=bool(spans))
            ids += enc["input_ids"]
            if spans:
                labels += [
                    tok if any(s <= pos + a and pos + b <= e for s, e in spans) and b > a else IGNORE_INDEX
                    for tok, (a, b) in zip(enc["input_ids"], enc["offset_mapping"])
                ]
            else:
                labels += [IGNORE_INDEX] * len(enc["input_ids"])
        pos += len(piece)
    return EncodedPrompt(torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long), text)


ZWSP = "\u200b"


def neutralize_control_tokens(tokenizer, text: str) -> str:
    """``text`` with every added/special token string of ``tokenizer`` broken by a zero-width space.

    Hugging Face tokenizers turn an added token's string into its id wherever it
    appears, so a user who types ``<|im_end|><|im_start|>system`` would otherwise
    write a real turn. The characters stay (the model reads them as text).
    """
    pattern = _control_pattern(tokenizer)
    if pattern is None or not text:
        return text
    return pattern.sub(lambda m: m.group()[0] + ZWSP + m.group()[1:], text)


def _neutralized(tokenizer, value):
    """``value`` (a tool spec: dicts, lists, strings) with every string's control tokens neutralized."""
    if isinstance(value, str):
        return neutralize_control_tokens(tokenizer, value)
    if isinstance(value, dict):
        return {_neutralized(tokenizer, k): _neutralized(tokenizer, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_neutralized(tokenizer, v) for v in value]
    return value


def _control_pattern(tokenizer) -> re.Pattern | None:
    tokens = tuple(sorted((t for t in getattr(tokenizer, "added_tokens_encoder", {}) if len(t) > 1), key=len,
                          reverse=True))
    return _compiled(tokens)


@lru_cache(maxsize=16)
def _compiled(tokens: tuple[str, ...]) -> re.Pattern | None:
    return re.compile("|".join(re.escape(t) for t in tokens)) if tokens else None


def _assistant_spans(tokenizer, messages: list[dict], text: str) -> list[tuple[int, int]]:
    """Character spans of every assistant reply (incl. its end-of-turn marker) in ``text``.

    Found by rendering the conversation up to each reply with and without it; a
    template that does not render prefixes consistently cannot be trained on and
    raises :class:`PromptError` instead of silently supervising nothing.
    """
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        through = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False, add_generation_prompt=False)
        if not (text.startswith(before) and text.startswith(through) and len(through) > len(before)):
            raise PromptError("The chat template does not render conversations prefix-consistently; "
                              "cannot mask labels.")
        end = len(through.rstrip("\n"))
        spans.append((len(before), end))
    return spans


def _content(message: dict) -> str:
    content = message.get("content", "")
    if not isinstance(content, str):
        raise PromptError("Message content must be a string.")
    return content
