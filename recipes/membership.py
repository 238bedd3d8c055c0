"""Loss-threshold membership inference (Yeom et al., 2018): does a model's loss give its training data away?

The attacker calls a conversation a training *member* when the model's loss on
it is below a threshold. Sweeping the threshold traces a ROC curve; its area
is the probability that a random member has a lower loss than a random
non-member, ties counting half (the Mann-Whitney U statistic). 0.5 means the
loss tells members from non-members no better than a coin; 1.0 means every
member is told apart. Non-members must come from the members' distribution,
so :func:`split_members` holds a seeded share of the training set back.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from multimodal.errors import InputError

from .dataset import seeded, write_split


def membership_auc(member_losses, nonmember_losses) -> float:
    """Area under the ROC curve of the loss-threshold attack (lower loss = member)."""
    m = np.asarray(member_losses, dtype=np.float64)[:, None]  # [M, 1]
    n = np.asarray(nonmember_losses, dtype=np.float64)[None, :]  # [1, N]
    if not m.size or not n.size:
        raise InputError("Membership inference needs at least one member and one non-member.")
    if not (np.isfinite(m).all() and np.isfinite(n).all()):
        raise InputError("Membership inference got a loss that is not a finite number.")
    wins = (m < n).sum() + 0.5 * (m == n).sum()
    return float(wins / (m.size * n.size))


def auc_standard_error(auc: float, n_members: int, n_nonmembers: int) -> float:
    """Standard error of an AUC from ``n_members`` and ``n_nonmembers`` scores (Hanley & McNeil, 1982)."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_members - 1) * (q1 - auc**2) + (n_nonmembers - 1) * (q2 - auc**2))
    return float(np.sqrt(max(var, 0.0) / (n_members * n_nonmembers)))


def split_members(data: str | Path, nonmember_share: float, seed: int = 0) -> tuple[Path, Path]:
    """Write ``<stem>.members.jsonl`` and ``<stem>.nonmembers.jsonl`` beside ``data`` (so media paths still
    resolve): a seeded ``nonmember_share`` of its records held back, the rest to train on."""
    if not 0.0 < nonmember_share < 1.0:
        raise InputError("nonmember_share must be between 0 and 1 (exclusive).")
    data = Path(data)
    text = data.read_text()
    records = (json.loads(text) if text.lstrip().startswith("[") else  # a JSON array or JSONL, as medany train reads
               [json.loads(ln) for ln in text.splitlines() if ln.strip()])
    held = round(len(records) * nonmember_share)
    if held < 1 or held >= len(records):
        raise InputError(f"A share of {nonmember_share} of {len(records)} records leaves no members or no "
                         "non-members.")
    order = list(range(len(records)))
    seeded(seed, "membership").shuffle(order)
    out = set(order[:held])
    members = [r for i, r in enumerate(records) if i not in out]
    nonmembers = [r for i, r in enumerate(records) if i in out]
    return (write_split(data.with_name(f"{data.stem}.members.jsonl"), members),
            write_split(data.with_name(f"{data.stem}.nonmembers.jsonl"), nonmembers))
