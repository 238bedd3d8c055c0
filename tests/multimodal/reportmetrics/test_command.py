"""``medany eval-reports``: the table and JSON, the ReXrank round trip, and typed errors for bad input."""

import json

import pytest

from multimodal import cli
from tests.multimodal.reportmetrics.test_rexrank import DATASET


def write(path, text):
    path.write_text(text)
    return str(path)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def pair(tmp_path):
    gen = write_jsonl(tmp_path / "gen.jsonl", [{"id": "a", "report": "Small left pleural effusion. No pneumothorax."},
                                               {"id": "b", "report": "Heart size is normal. Lungs are clear."}])
    ref = write_jsonl(tmp_path / "ref.jsonl", [{"id": "b", "report": "The heart is normal in size."},
                                               {"id": "a", "text": "Left pleural effusion and possible pneumonia."}])
    return gen, ref


def test_scores_print_a_table_and_write_json(pair, tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert cli.main(["eval-reports", *pair, "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "| BLEU-4 |" in shown and "| CheXpert micro F1, 14 labels |" in shown and "| Pleural Effusion |" in shown
    result = json.loads(out.read_text())
    assert result["n"] == 2 and 0 < result["bleu4"] < 1 and 0 < result["rouge_l"] < 1
    # Reference order; pneumonia (-1 in the reference) counts as positive by default and is missed.
    assert [r["id"] for r in result["reports"]] == ["b", "a"]
    assert result["chexpert"]["per_label"]["Pneumonia"]["fn"] == 1
    assert result["chexpert"]["per_label"]["Pleural Effusion"]["f1"] == 1.0
    assert "Small left" not in shown  # report texts are not printed


def test_strict_counting_changes_what_uncertain_labels_count_as(pair, tmp_path):
    out = tmp_path / "strict.json"
    assert cli.main(["eval-reports", *pair, "--uncertain", "negative", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["chexpert"]["per_label"]["Pneumonia"]["support"] == 0


def test_a_rexrank_submission_round_trips_and_scores_alone(tmp_path):
    data = tmp_path / "ReXRank_test.json"
    data.write_text(json.dumps(DATASET))
    gen = write_jsonl(tmp_path / "gen.jsonl", [{"id": "s1", "report": "No effusion."},
                                               {"id": "s2", "report": "Small right pneumothorax."}])
    sub, a, b = tmp_path / "submission.json", tmp_path / "a.json", tmp_path / "b.json"
    assert cli.main(["eval-reports", gen, str(data), "--rexrank", str(sub), "--out", str(a)]) == 0
    assert json.loads(sub.read_text())["s2"]["model_prediction"] == "Small right pneumothorax."
    assert cli.main(["eval-reports", str(sub), "--out", str(b)]) == 0  # the submission holds both sides
    assert json.loads(a.read_text())["chexpert"] == json.loads(b.read_text())["chexpert"]


@pytest.mark.parametrize("make, message", [
    (lambda p: str(p / "absent.jsonl"), "does not exist"),
    (lambda p: write_jsonl(p / "x.jsonl", []), "is empty"),
    (lambda p: write(p / "x.jsonl", '{"id": "a", "report": "ok"}\n{"id": \n'),
     "Line 2 of the generated reports file is not a JSON object"),
    (lambda p: write_jsonl(p / "x.jsonl", [{"report": "no id"}]), "needs an \"id\""),
    (lambda p: write_jsonl(p / "x.jsonl", [{"id": "a", "report": "x"}, {"id": "a", "report": "y"}]), "repeats an id"),
    (lambda p: write_jsonl(p / "x.jsonl", [{"id": "a", "report": "x"}]), "do not pair up"),
    (lambda p: write(p / "x.json", "{nope"), "not valid JSON"),
    (lambda p: write(p / "x.json", '{"s1": {"report": "no prediction"}}'), "no model_prediction"),
])
def test_bad_input_is_refused_with_a_message_and_exit_code_2(pair, tmp_path, capsys, make, message):
    assert cli.main(["eval-reports", make(tmp_path), pair[1]]) == 2
    err = capsys.readouterr().err
    assert "medany eval-reports: input problem:" in err and message in err and "Traceback" not in err


def test_a_plugin_that_cannot_run_is_refused_before_any_work(pair, capsys, monkeypatch):
    monkeypatch.setattr("multimodal.reportmetrics.plugins._hub_cached", lambda *a: None)
    monkeypatch.delenv("MEDANY_CHEXBERT", raising=False)
    assert cli.main(["eval-reports", *pair, "--metric", "chexbert"]) == 1
    assert "chexbert: weights absent" in capsys.readouterr().err
    assert cli.main(["eval-reports", *pair, "--metric", "bleurt"]) == 1
    assert "no such metric plug-in" in capsys.readouterr().err


def test_list_metrics_says_what_can_run_here(capsys, monkeypatch):
    monkeypatch.setattr("multimodal.reportmetrics.plugins._hub_cached", lambda *a: None)
    monkeypatch.delenv("MEDANY_CHEXBERT", raising=False)
    assert cli.main(["eval-reports", "--list-metrics"]) == 0
    shown = capsys.readouterr().out
    assert "radgraph" in shown and "chexbert" in shown and "weights_absent" in shown
