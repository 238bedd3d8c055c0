"""Self-distillation: what the frozen LLM answers without media tokens, as a training reference.

An assistant-format recipe (``recipes/image/assistant_format.py``) mixes in
open questions whose reference reply is the frozen LLM's own answer to the
pipeline's prompt without a projector (media described by their text lines
only), so a projector learns to leave open answers as they were.
"""

from __future__ import annotations

import re
from typing import Sequence

from multimodal.prompt import chat_messages
from multimodal.template import encode_conversation


def whole_sentences(text: str) -> str:
    """``text`` cut after its last full sentence (a reply cut off by the token limit)."""
    text = text.strip()
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text)]
    return text[: ends[-1]] if ends and ends[-1] < len(text) else text


def frozen_answer(assistant, media_lines: Sequence[str], question: str, *, max_new_tokens: int) -> str:
    """The greedy answer of ``assistant``'s LLM to ``question`` after ``media_lines``, cut to whole sentences."""
    messages = chat_messages(list(media_lines), question)
    ids = encode_conversation(assistant.tokenizer, messages, {}, add_generation_prompt=True).input_ids
    settings = assistant.generation_settings(max_new_tokens=max_new_tokens)
    out = list(assistant.backend.generate_ids(ids, {}, settings))
    return whole_sentences(assistant.tokenizer.decode(out, skip_special_tokens=True))
