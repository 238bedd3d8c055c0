"""LLaVA-format training data: read, validate, tokenize, collate.

A dataset is a JSON array or a JSONL file of records such as::

    {"id": "cxr-1", "image": "scans/cxr1.png",
     "conversations": [{"from": "human", "value": "<image>\\nWhat modality is this?"},
                       {"from": "gpt", "value": "Modality: CR"}]}

``"image"`` / ``"audio"`` hold one path or a list of paths relative to the data
root (default: the dataset file's folder). ``"messages"`` with
``{"role", "content"}`` is accepted in place of ``"conversations"``. When a
record has media but no placeholder for it, ``<image>`` / ``<audio>`` lines are
prepended to the first user turn (LLaVA's convention). Every other field (for
example ``"transcript"`` or ``"fields"``, used by :mod:`multimodal.evaluate`)
is kept in :attr:`Sample.extra`.

Problems are reported together, each with its line number, as one
:class:`DatasetError`. Letters: B batch, L sequence length.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import torch

from .errors import InputError, PromptError
from .media import MediaBatch, MediaInputs
from .template import IGNORE_INDEX, PLACEHOLDERS, count_placeholders, encode_conversation

MEDIA_KEYS = tuple(PLACEHOLDERS)  # ("image", "audio")
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
MAX_LISTED = 20


class DatasetError(InputError):
    """A training or evaluation dataset cannot be used; ``problems`` = ``[(line, message)]``."""

    code = "invalid_dataset"

    def __init__(self, problems: list[tuple[int, str]], header: str = "The dataset has problems"):
        self.problems = list(problems)
        listed = "; ".join(f"line {n}: {msg}" for n, msg in self.problems[:MAX_LISTED])
        more = f" (and {len(self.problems) - MAX_LISTED} more)" if len(self.problems) > MAX_LISTED else ""
        super().__init__(f"{header}: {listed}{more}")


@dataclass
class Sample:
    """One validated conversation: chat ``messages``, resolved ``media`` files, source ``line``."""

    line: int
    messages: list[dict]
    media: dict[str, list[Path]] = field(default_factory=dict)
    id: str = ""
    extra: dict = field(default_factory=dict)


# --- reading -----------------------------------------------------------------------


def _records(text: str, jsonl: bool) -> tuple[list[tuple[int, object]], list[tuple[int, str]]]:
    """``[(line, record)]`` and ``[(line, problem)]`` from the raw file text."""
    out, problems = [], []
    if jsonl:
        for n, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                out.append((n, json.loads(raw)))
            except json.JSONDecodeError as exc:
                problems.append((n, f"not valid JSON ({exc.msg})"))
        return out, problems
    # A JSON array: decode element by element so each record knows its line.
    decoder, pos = json.JSONDecoder(), text.index("[") + 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            break
        line = text.count("\n", 0, pos) + 1
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            problems.append((exc.lineno, f"not valid JSON ({exc.msg})"))
            break
        out.append((line, obj))
    return out, problems


def _media_list(value, kind: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise ValueError(f'"{kind}" must be a file name or a non-empty list of file names')
    return items


def _messages(record: dict) -> list[dict]:
    if "conversations" in record:
        turns, role_key, text_key = record["conversations"], "from", "value"
    elif "messages" in record:
        turns, role_key, text_key = record["messages"], "role", "content"
    else:
        raise ValueError('no "conversations" (or "messages") list')
    if not isinstance(turns, list) or not turns:
        raise ValueError("the conversation is empty")
    out = []
    for i, turn in enumerate(turns, 1):
        if not isinstance(turn, dict) or not isinstance(turn.get(text_key), str):
            raise ValueError(f'turn {i} needs a "{role_key}" and a text "{text_key}"')
        role = _ROLES.get(str(turn.get(role_key, "")).lower())
        if role is None:
            raise ValueError(f"turn {i} has an unknown speaker (use human/gpt/system or user/assistant)")
        out.append({"role": role, "content": turn[text_key]})
    return out


def parse_record(record, line: int, root: Path) -> Sample:
    """Validate one record; raises ``ValueError`` with a message (no line) on the first problem."""
    if not isinstance(record, dict):
        raise ValueError("a record must be a JSON object")
    messages = _messages(record)
    media: dict[str, list[Path]] = {}
    for kind in MEDIA_KEYS:
        if record.get(kind) is None:
            continue
        files = _media_list(record[kind], kind)
        for i, name in enumerate(files, 1):
            if not (root / name).is_file():
                raise ValueError(f"{kind} #{i} was not found under the data root")
        media[kind] = [root / name for name in files]
    counts = count_placeholders(messages)
    for kind in MEDIA_KEYS:
        n = len(media.get(kind, []))
        if counts[kind] == 0 and n:
            first_user = next((m for m in messages if m["role"] == "user"), None)
            if first_user is None:
                raise ValueError(f"has {kind} files but no user turn to attach them to")
            first_user["content"] = f"{PLACEHOLDERS[kind]}\n" * n + first_user["content"]
        elif counts[kind] != n:
            raise ValueError(f"has {counts[kind]} {PLACEHOLDERS[kind]} placeholder(s) but {n} {kind} file(s)")
    for m in messages:
        if m["role"] == "assistant" and any(p in m["content"] for p in PLACEHOLDERS.values()):
            raise ValueError("media placeholders may only appear in human/system turns")
    if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        raise ValueError("no assistant (gpt) reply to learn from")
    extra = {k: v for k, v in record.items() if k not in ("conversations", "messages", "id", *MEDIA_KEYS)}
    return Sample(line, messages, media, str(record.get("id", line)), extra)


def load_samples(path: str | Path, data_root: str | Path | None = None) -> list[Sample]:
    """Read and validate a LLaVA JSON/JSONL dataset; raises :class:`DatasetError` listing every problem."""
    path = Path(path)
    root = Path(data_root) if data_root else path.parent
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError([(0, "the dataset file was not found")]) from None
    except UnicodeDecodeError:
        raise DatasetError([(0, "the dataset file is not UTF-8 text")]) from None
    stripped = text.lstrip()
    if not stripped:
        raise DatasetError([(1, "the dataset file is empty")])
    records, problems = _records(text, jsonl=not stripped.startswith("["))
    samples = []
    for line, record in records:
        try:
            samples.append(parse_record(record, line, root))
        except ValueError as exc:
            problems.append((line, str(exc)))
    if problems:
        raise DatasetError(sorted(problems))
    if not samples:
        raise DatasetError([(1, "the dataset holds no records")])
    return samples


# --- start-up template check --------------------------------------------------------


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def check_supervision(samples: list[Sample], tokenizer) -> dict:
    """Refuse data the chat template would train on silently badly.

    Tokenizes every sample (media as one placeholder token: the label mask does
    not depend on media length) and requires (a) at least one supervised token
    and (b) every assistant reply to come back intact when the supervised
    tokens are decoded. A template mismatch (LLaVA's most common failure)
    otherwise zeroes the loss without an error. Returns token statistics.
    """
    problems, counts = [], []
    for s in samples:
        try:
            enc = encode_conversation(
                tokenizer, s.messages, {k: [1] * len(v) for k, v in s.media.items()}, add_generation_prompt=False
            )
        except PromptError as exc:
            problems.append((s.line, str(exc)))
            continue
        supervised = enc.labels[enc.labels != IGNORE_INDEX]
        if supervised.numel() == 0:
            problems.append((s.line, "no supervised tokens: the chat template did not mark any assistant reply"))
            continue
        decoded = _norm(tokenizer.decode(supervised.tolist(), skip_special_tokens=True))
        for m in s.messages:
            if m["role"] == "assistant" and _norm(m["content"]) not in decoded:
                problems.append((s.line, "an assistant reply does not survive the tokenizer/template round trip"))
                break
        counts.append(int(supervised.numel()))
    if problems:
        raise DatasetError(sorted(problems), header="Refusing to train: the template check failed")
    return {"samples": len(samples), "supervised_tokens": sum(counts), "min_supervised_tokens": min(counts)}


# --- tensors ------------------------------------------------------------------------

# (kind, file) -> (model input tensor, valid encoder tokens or None)
MediaFn = Callable[[str, Path], tuple[torch.Tensor, "int | None"]]


class ConversationDataset(torch.utils.data.Dataset):
    """Samples -> ``{"input_ids", "labels", "media"}`` tensors, one conversation per item.

    ``media_fn(kind, path)`` returns what the model's encoder stage eats for one
    file (preprocessed pixels/mels, or cached encoder tokens) and how many of
    the encoder's tokens are real; ``token_counts(kind, n_list)`` maps encoder
    token counts to LLM token counts (the projector's rule).
    """

    def __init__(self, samples: list[Sample], tokenizer, media_fn: MediaFn, token_counts, *,
                 encoder_tokens: Mapping[str, int] | None = None, max_length: int | None = None):
        self.samples = samples
        self.tokenizer = tokenizer
        self.media_fn = media_fn
        self.token_counts = token_counts
        self.encoder_tokens = dict(encoder_tokens or {})
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        s = self.samples[i]
        media, n_tokens = {}, {}
        for kind, files in s.media.items():
            items = [self.media_fn(kind, f) for f in files]
            media[kind] = items
            n_enc = [v if v is not None else self._tokens_of(kind, x) for x, v in items]
            n_tokens[kind] = self.token_counts(kind, n_enc)
        enc = encode_conversation(self.tokenizer, s.messages, n_tokens, add_generation_prompt=False)
        if self.max_length and enc.input_ids.numel() > self.max_length:
            raise DatasetError(
                [(s.line, f"{enc.input_ids.numel()} tokens exceed max_length {self.max_length}")],
                header="A sample is too long",
            )
        return {"input_ids": enc.input_ids, "labels": enc.labels, "media": media, "media_tokens": n_tokens, "index": i}

    def _tokens_of(self, kind: str, x: torch.Tensor) -> int:
        if kind not in self.encoder_tokens:
            raise ValueError(f"Encoder token count for {kind} is unknown; pass encoder_tokens.")
        return self.encoder_tokens[kind]


def collate(items: list[dict], pad_id: int) -> dict:
    """Right-pad a list of items into a batch for :meth:`MedAnyModel.forward`.

    Returns ``input_ids``/``labels``/``attention_mask`` ``[B, L]`` and ``media``, a
    :class:`~multimodal.media.MediaBatch` with media in reading order across the
    batch, as the splice expects.
    """
    length = max(it["input_ids"].numel() for it in items)
    b = len(items)
    input_ids = torch.full((b, length), pad_id, dtype=torch.long)  # [B, L]
    labels = torch.full((b, length), IGNORE_INDEX, dtype=torch.long)  # [B, L]
    mask = torch.zeros((b, length), dtype=torch.long)  # [B, L]
    for r, it in enumerate(items):
        n = it["input_ids"].numel()
        input_ids[r, :n] = it["input_ids"]
        labels[r, :n] = it["labels"]
        mask[r, :n] = 1
    media = {}
    for kind in MEDIA_KEYS:
        got = [m for it in items for m in it["media"].get(kind, [])]
        if got:
            valid = [v for _, v in got]
            x = torch.stack([t for t, _ in got])  # [n, ...]
            counts = [c for it in items for c in it["media_tokens"].get(kind, [])]
            media[kind] = MediaInputs(x, None if any(v is None for v in valid) else valid, counts)
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask, "media": MediaBatch(media),
            "index": [it["index"] for it in items]}
