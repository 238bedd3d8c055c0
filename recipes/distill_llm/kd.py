"""The distillation losses, and a teacher record turned into the student's training example.

Two terms, on the student's own tokenization of the teacher's answer:

- **sequence-level** (SeqKD, Kim & Rush 2016): cross-entropy of the teacher's greedy answer, every answer
  token and the end-of-turn token; the only term that needs nothing from the teacher but its text.
- **logit** (token-level KD): the teacher's top-k next-token distribution as a soft target. The two LLMs
  have different vocabularies (Qwen2.5: 151,936 tokens; SmolLM2: 49,152), so a teacher distribution can
  only be read where both tokenizers cut the answer at the same character *and* emit the same token
  string there (both are byte-level BPEs over the same byte alphabet, so a token string means the same
  bytes in both). At such a position the teacher's top-k candidates that are also student tokens,
  renormalised over themselves, are the target of a soft cross-entropy against the student's full
  softmax; a candidate the student's vocabulary lacks is dropped (its mass is reported). Elsewhere the
  position keeps the sequence-level term only.

``loss = (1 - alpha) * CE + alpha * KD``; ``alpha = 0`` is pure sequence-level distillation.

Letters: B batch, L sequence length, N supervised positions, M aligned positions, K top-k.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from multimodal.errors import InputError
from multimodal.template import IGNORE_INDEX, encode_conversation

ROLES = {"system": "system", "human": "user", "gpt": "assistant"}


def record_messages(record: dict) -> list[dict]:
    """The record's conversation as chat messages (the teacher's answer last)."""
    return [{"role": ROLES[t["from"]], "content": t["value"]} for t in record["conversations"]]


def student_example(tokenizer, record: dict, vocab: dict[str, int] | None = None, *, max_length: int = 1024) -> dict:
    """The student's tensors for one teacher record.

    Returns ``input_ids`` ``[L]``, ``labels`` ``[L]`` (answer tokens and end of turn; the rest
    ``IGNORE_INDEX``), ``kd_index`` ``[M]`` (which supervised token, in order, has a teacher target),
    ``kd_ids`` / ``kd_probs`` ``[M, K]`` (student ids of the teacher's candidates and their renormalised
    probabilities; padding has probability 0) and ``stats``.
    """
    vocab = tokenizer.get_vocab() if vocab is None else vocab
    messages = record_messages(record)
    answer = messages[-1]["content"]
    enc = encode_conversation(tokenizer, messages, {}, add_generation_prompt=False)
    ids, labels = enc.input_ids, enc.labels  # [L], [L]
    if ids.numel() > max_length:
        raise InputError(f"Record {record.get('id')!r} is {ids.numel()} tokens long; the limit is {max_length}.")
    start = enc.text.rfind(answer)
    redo = tokenizer(enc.text, add_special_tokens=False, return_offsets_mapping=True)
    if start < 0 or redo["input_ids"] != ids.tolist():
        raise InputError(f"Record {record.get('id')!r}: the answer cannot be located in the rendered conversation.")
    teacher = record.get("teacher") or {}
    at = {}  # character offset in the answer -> teacher position
    for t, offset in enumerate(teacher.get("offsets", [])):
        at.setdefault(offset, t)
    strings = tokenizer.convert_ids_to_tokens(ids.tolist())
    k = max((len(row) for row in teacher.get("topk_tokens", [])), default=1)
    kd_index, kd_ids, kd_probs, kept_mass = [], [], [], []
    supervised = (labels != IGNORE_INDEX).nonzero().flatten().tolist()
    for n, j in enumerate(supervised):
        t = at.get(redo["offset_mapping"][j][0] - start)
        if t is None or teacher["tokens"][t] != strings[j]:
            continue  # the two tokenizers cut the answer differently here
        cands = [(vocab[s], lp) for s, lp in zip(teacher["topk_tokens"][t], teacher["topk_logprobs"][t]) if s in vocab]
        if not cands:
            continue
        logp = torch.tensor([lp for _, lp in cands], dtype=torch.float32)
        kept_mass.append(float(logp.exp().sum()))
        probs = torch.softmax(logp, dim=0)  # renormalised over the candidates both vocabularies have
        kd_index.append(n)
        kd_ids.append([i for i, _ in cands] + [0] * (k - len(cands)))
        kd_probs.append(probs.tolist() + [0.0] * (k - len(cands)))
    stats = {"supervised": len(supervised), "aligned": len(kd_index),
             "mapped_mass": sum(kept_mass) / len(kept_mass) if kept_mass else 0.0}
    return {"input_ids": ids, "labels": labels, "kd_index": torch.tensor(kd_index, dtype=torch.long),
            "kd_ids": torch.tensor(kd_ids, dtype=torch.long).reshape(-1, k),
            "kd_probs": torch.tensor(kd_probs, dtype=torch.float32).reshape(-1, k), "stats": stats}


def collate_examples(examples: list[dict], pad_id: int) -> dict:
    """Right-padded ``input_ids`` / ``attention_mask`` / ``labels`` ``[B, L]`` and the KD targets of the batch,
    ``kd_index`` pointing into the batch's supervised positions in row-major order."""
    length = max(e["input_ids"].numel() for e in examples)
    ids = torch.full((len(examples), length), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), length), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), length), dtype=torch.long)
    kd_index, offset = [], 0
    k = max(e["kd_ids"].shape[1] for e in examples)
    for b, e in enumerate(examples):
        n = e["input_ids"].numel()
        ids[b, :n], labels[b, :n], mask[b, :n] = e["input_ids"], e["labels"], 1
        kd_index.append(e["kd_index"] + offset)
        offset += int((e["labels"] != IGNORE_INDEX).sum())
    pad = [F.pad(e[key], (0, k - e[key].shape[1])) for e in examples for key in ("kd_ids", "kd_probs")]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "kd_index": torch.cat(kd_index),
            "kd_ids": torch.cat(pad[0::2]), "kd_probs": torch.cat(pad[1::2])}


def supervised_logits(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits [N, V], targets [N])`` at the positions that predict a supervised token only (the vocabulary
    head is the largest matrix of a small model: running it on every prompt position would dominate)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = base.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"][:, 1:]  # [B, L-1]: position p predicts token p + 1
    rows, cols = (labels != IGNORE_INDEX).nonzero(as_tuple=True)  # row-major, as collate_examples counts
    return base.lm_head(hidden[rows, cols]), labels[rows, cols]  # [N, V], [N]


def kd_loss(logits: torch.Tensor, kd_ids: torch.Tensor, kd_probs: torch.Tensor) -> torch.Tensor:
    """Soft cross-entropy ``-sum_k p_teacher(k) log p_student(k)`` per aligned position ``[M]``, averaged.

    Equal to KL(teacher || student) on the shared candidates up to the teacher's entropy (a constant).
    """
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, kd_ids)  # [M, K]
    return -(kd_probs * logp).sum(-1).mean()


def distill_losses(model, batch: dict, alpha: float) -> dict:
    """``{"loss", "ce", "kd"}`` for one collated batch (``kd`` is 0 when no position is aligned)."""
    logits, targets = supervised_logits(model, batch)  # [N, V], [N]
    ce = F.cross_entropy(logits.float(), targets)
    kd = kd_loss(logits[batch["kd_index"]], batch["kd_ids"], batch["kd_probs"])
    return {"loss": (1.0 - alpha) * ce + alpha * kd if alpha else ce, "ce": ce, "kd": kd}
