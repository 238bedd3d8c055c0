"""``python -m recipes.dp_sweep``: every setting trained on the members, scored, attacked, tabulated (tiny models)."""

import json

import pytest

from recipes.dp_sweep import main
from recipes.membership import membership_auc
from tests.multimodal.train_helpers import COLORS, make_image_set, write_config

pytest.importorskip("opacus")


def _ten_conversations(root):
    """The four colour pictures asked about in ten conversations (two or three questions each)."""
    make_image_set(root)
    lines = []
    for i in range(10):
        colour = list(COLORS)[i % 4]
        lines.append({"id": f"q{i}", "image": f"{colour}.png", "fields": {"colour": colour},
                      "conversations": [{"from": "human", "value": f"<image>\nQuestion {i}: what colour?"},
                                        {"from": "gpt", "value": f"Colour: {colour}"}]})
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


def test_sweep_trains_every_setting_on_the_members_and_tabulates(tmp_path, capsys):
    _ten_conversations(tmp_path)
    cfg = write_config(tmp_path, dp={"epsilon": 8, "delta": 1e-3, "max_grad_norm": 1.0}, eval_data="train.jsonl",
                       eval_max_new_tokens=3, max_steps=3, batch_size=2, save_every=10)
    argv = [str(cfg), "--dp-epsilon", "2", "--dp-epsilon", "8", "--nonmember-share", "0.3",
            "--out", str(tmp_path / "sweep")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    rows = json.loads((tmp_path / "sweep/sweep.json").read_text())["rows"]
    assert [r["setting"] for r in rows] == ["no DP", "epsilon 2", "epsilon 8", "untrained"]
    trained, untrained = rows[:3], rows[3]
    assert rows[0]["epsilon"] is None and 0 < rows[1]["epsilon"] <= 2 < rows[2]["epsilon"] <= 8
    assert rows[1]["noise_multiplier"] > rows[2]["noise_multiplier"] > 0  # a smaller epsilon needs more noise
    assert all(r["members"] == 7 and r["steps"] == 3 and r["s_per_epoch"] > 0 for r in trained)
    assert untrained["steps"] == 0 and untrained["s_per_epoch"] is None
    assert all(r["attacked_members"] == r["nonmembers"] == 3 and set(r["field_accuracy"]) == {"colour"}
               and 0 < r["mia_auc_se"] < 0.5 for r in rows)
    for r, folder in zip(rows, ["no-dp", "eps-2", "eps-8", "untrained"]):
        losses = json.loads((tmp_path / "sweep" / folder / "membership.json").read_text())
        assert len(losses["members"]) == 3 and r["mia_auc"] == membership_auc(losses["members"], losses["nonmembers"])
    for folder in ("no-dp", "eps-2", "eps-8"):
        meta = json.loads((tmp_path / "sweep" / folder / "image_projector/projector.json").read_text())
        assert ("dp" in meta) == (folder != "no-dp")
    members = {json.loads(ln)["id"] for ln in (tmp_path / "train.members.jsonl").read_text().splitlines()}
    attacked = [json.loads(ln)["id"] for ln in (tmp_path / "train.attacked.jsonl").read_text().splitlines()]
    assert set(attacked) <= members and len(set(attacked)) == 3
    assert "| no DP |" in printed and "| epsilon 2 |" in printed and "| untrained |" in printed
    assert "MIA AUC" in printed


def test_sweep_needs_a_dp_section(tmp_path, capsys):
    make_image_set(tmp_path)
    assert main([str(write_config(tmp_path))]) == 2
    assert "needs a dp section" in capsys.readouterr().err
