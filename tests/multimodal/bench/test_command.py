"""``medany bench`` through the command line: the task list, refusals, and whole runs on the tiny stack."""

import json

import pytest

from multimodal import cli
from multimodal.bench import TASKS, get_task
from multimodal.errors import UnknownTaskError

TINY = ["--llm", "tiny-random", "--vision", "tiny_vit", "--speech", "", "--knowledge", "none"]


def test_list_names_every_task(capsys):
    assert cli.main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines()]
    assert names == list(TASKS) and len(names) == 12
    for name in ("vqa_rad", "slake", "pathvqa", "medqa_4options", "pubmedqa", "mmlu_anatomy",
                 "mmlu_clinical_knowledge", "mmlu_college_medicine", "mmlu_medical_genetics",
                 "mmlu_professional_medicine", "mmlu_college_biology", "mmlu_medical"):
        assert name in names
    assert "BoKelvin/SLAKE" in out and "cais/mmlu" in out


def test_task_names_are_forgiving_and_unknown_ones_refused(capsys):
    assert get_task("VQA-RAD").name == "vqa_rad"
    with pytest.raises(UnknownTaskError, match="vqa_rad, slake"):
        get_task("chexpert")
    assert cli.main(["bench", "chexpert", "--fixture", *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medany: input problem:") and "mmlu_medical" in err


def test_a_run_needs_exactly_one_data_source(tmp_path, capsys):
    assert cli.main(["bench", "slake", *TINY]) == 2
    assert "Name one data source" in capsys.readouterr().err
    assert cli.main(["bench", "slake", "--fixture", "--data", str(tmp_path), *TINY]) == 2
    assert cli.main(["bench", "slake", "--data", str(tmp_path / "absent"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and str(tmp_path) not in err


def test_vqa_fixture_run_writes_the_results_file(tmp_path, capsys):
    out = tmp_path / "vqa_rad.json"
    assert cli.main(["bench", "vqa_rad", "--fixture", "--answer-tokens", "4", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("vqa_rad: VQA-RAD") and "fixture (hand-written items, not the data set)" in printed
    results = json.loads(out.read_text())
    assert results["data"] == {"source": "local", "files": ["data/test-00000-of-00001.parquet"], "fixture": True}
    assert results["stack"] == {"llm": "tiny-random", "backend": "transformers"}
    assert results["settings"]["max_new_tokens"] == 4 and results["metrics"]["n"] == len(results["items"]) == 6
    # the random model's answers, scored: each metric is the mean of the item scores the file records
    items = results["items"]
    closed = [i["closed_hit"] for i in items if i["answer_type"] == "closed"]
    assert results["metrics"]["closed_accuracy"] == sum(closed) / len(closed)
    assert results["metrics"]["exact_match"] == sum(i["exact_match"] for i in items) / 6


def test_choice_fixture_run_on_the_tiny_model(tmp_path):
    out = tmp_path / "anatomy.json"
    assert cli.main(["bench", "mmlu-anatomy", "--fixture", "--out", str(out), *TINY]) == 0
    results = json.loads(out.read_text())
    assert results["task"] == "mmlu_anatomy" and results["settings"]["num_fewshot"] == 0
    for item in results["items"]:
        lls = item["loglikelihoods"]
        assert len(lls) == 4 and all(v < 0 for v in lls)
        assert item["pred"] == lls.index(max(lls)) and item["acc"] == float(item["pred"] == item["gold"])
    assert results["metrics"]["acc"] == sum(i["acc"] for i in results["items"]) / 2
