"""CheXbert (Smit et al., 2020) from a local checkpoint: BERT-base and 14 linear heads read a report's labels.

The published checkpoint (``chexbert.pth``) is a dict whose ``model_state_dict``
holds ``bert.*`` (BERT-base-uncased) and ``linear_heads.{0..13}.*``: 13 heads of
4 classes (0 blank, 1 positive, 2 negative, 3 uncertain) in the order of
:data:`CONDITIONS`, and one of 2 for No Finding. It loads with
``torch.load(weights_only=True)`` (tensors only, nothing unpickled); the BERT
config and vocabulary come from a local folder, never from a hub.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

CONDITIONS = ("Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
              "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
              "Fracture", "Support Devices", "No Finding")
"""CheXbert's head order."""

CLASS_VALUE = {0: None, 1: 1, 2: 0, 3: -1}
"""A head's class -> our label value (blank, positive, negative, uncertain)."""

MAX_TOKENS = 512


class CheXbert(nn.Module):
    """BERT + 14 heads on the [CLS] state (inference only)."""

    def __init__(self, bert_dir: str | Path):
        super().__init__()
        from transformers import BertConfig, BertModel

        self.bert = BertModel(BertConfig.from_pretrained(str(bert_dir)))
        hidden = self.bert.config.hidden_size
        self.linear_heads = nn.ModuleList([nn.Linear(hidden, 4) for _ in range(13)] + [nn.Linear(hidden, 2)])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        cls = self.bert(input_ids, attention_mask=attention_mask)[0][:, 0]  # [B, D]
        return [head(cls) for head in self.linear_heads]  # 14 x [B, classes]


class CheXbertLabeler:
    """Labels reports with a CheXbert checkpoint: ``labeler(texts) -> [{label: 1 | 0 | -1 | None}]``."""

    def __init__(self, checkpoint: str | Path, bert_dir: str | Path, device: str = "cpu"):
        from transformers import BertTokenizer

        self.tokenizer = BertTokenizer.from_pretrained(str(bert_dir))
        self.model = CheXbert(bert_dir)
        state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
        state = state.get("model_state_dict", state)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        # The checkpoint predates BertModel's position_ids buffer; everything else must match.
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ValueError(f"not a CheXbert checkpoint: {len(missing)} missing and {len(unexpected)} unexpected "
                             "tensors")
        self.device = torch.device(device)
        self.model.to(self.device).eval()

    @torch.inference_mode()
    def __call__(self, texts: list[str]) -> list[dict[str, int | None]]:
        out = []
        for text in texts:
            ids = self.tokenizer.encode(" ".join(text.split()), truncation=True, max_length=MAX_TOKENS)
            batch = torch.tensor([ids], device=self.device)  # [1, T]
            logits = self.model(batch, torch.ones_like(batch))
            classes = [int(x.argmax(-1)) for x in logits]
            labels = {name: CLASS_VALUE[c] for name, c in zip(CONDITIONS[:-1], classes[:-1])}
            labels["No Finding"] = 1 if classes[-1] == 1 else None
            out.append(labels)
        return out
