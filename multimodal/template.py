"""Chat template rendering with media placeholders and label masking.

A user message may contain ``<image>`` and ``<audio>`` placeholders. We render
the conversation with the tokenizer's own chat template, split the text at the
placeholders, tokenize the text pieces and put a run of sentinel ids (negative,
so they can never collide with a vocabulary id) where each medium goes; the run
length is the number of tokens that medium's projector emits. The fusion model
later swaps the sentinels for projected features.

For training, ``labels`` keep only the assistant replies (and their end-of-turn
token); everything else is ``IGNORE_INDEX``.
"""

from __future__ import annotations

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


def encode_conversation(
    tokenizer,
    messages: list[dict],
    media_tokens: dict[str, list[int]] | None = None,
    *,
    add_generation_prompt: bool = True,
) -> EncodedPrompt:
    """Tokenize ``messages`` (``[{"role", "content"}]``) with media sentinel runs.

    ``media_tokens[kind][i]`` is the token count of the i-th medium of that kind,
    in order of appearance. Raises :class:`PlaceholderMismatchError` when the
    placeholders and the media disagree.
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
