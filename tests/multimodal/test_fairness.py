"""``medany eval --fairness``: per-group metrics by sex and age band, and the counterfactual test, on scripted answers.

The held-out set is the image recipe's: its four held-out scans (CT head, MR, a face photo stored as OT, an
ultrasound) once per sex and age band (:mod:`recipes.image.make_fairness`), 32 DICOMs. The scripted model names
the header's modality only when the DICOM line says ``sex F`` and adds a sentence for the 80-89 band, so every
number below is counted by hand:

- a woman's answer names the modality and not the CT's body part: CT 1/2, MR 1, OT 1, US 1 -> 3.5/4 = 0.875;
  a man's names nothing: 0. Sex gap 0.875 (F - M); each age band holds 4 scans x 2 sexes: (4 x 0.875) / 8 = 0.4375,
  age gap 0;
- flipping the sex changes all 32 answers and their fields; moving the age band half the bands (20-29 <-> 60-69,
  40-49 <-> 80-89) changes the 16 answers that go to or from 80-89, and no field.
"""

import json
import re

import pytest

from multimodal.config import StackConfig
from multimodal.fairness import (
    counterfactual_value,
    fairness_eval,
    fairness_markdown,
    group_metrics,
    items_from_samples,
)
from multimodal.pipeline import Assistant

TINY = dict(llm="tiny-random", vision="tiny_vit", speech="", knowledge="none", image_projector="none")


def script(prompt: str) -> list[str]:
    modality = re.search(r"DICOM modality (\w+)", prompt).group(1)
    answer = [f"This is a {modality} image."] if "sex F" in prompt else ["This is an image."]
    return answer + ([" The patient is elderly."] if "age 80-89" in prompt else [])


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    from recipes.image.make_fairness import make_fairness_set

    out = tmp_path_factory.mktemp("fair")
    make_fairness_set(out)
    return out / "eval.jsonl"


@pytest.fixture(scope="module")
def scripted_assistant():
    from tests.scripted import scripted

    return scripted(Assistant.load(StackConfig(**TINY)), script)


def test_counterfactual_values_swap_the_sex_and_move_the_age_band_half_the_bands():
    bands = ["20-29", "40-49", "60-69", "80-89", "unknown"]
    assert [counterfactual_value("age_band", b, bands) for b in bands[:4]] == ["60-69", "80-89", "20-29", "40-49"]
    assert counterfactual_value("sex", "F", []) == "M" and counterfactual_value("sex", "M", []) == "F"
    assert counterfactual_value("sex", "O", []) is None and counterfactual_value("sex", None, []) is None
    assert counterfactual_value("age_band", "20-29", ["20-29"]) is None  # nothing to move to


def test_group_metrics_count_each_group_with_intervals_and_the_largest_gap():
    scores = [1, 1, 1, 0, 0, 0, 0, 0]
    out = group_metrics(scores, {"sex": list("FFFFMMMM")}, n_boot=200)["sex"]
    assert out["groups"]["F"]["n"] == 4 and out["groups"]["F"]["accuracy"] == 0.75
    assert out["groups"]["M"] == {"n": 4, "accuracy": 0.0, "ci": [0.0, 0.0]}  # every resample of M scores 0
    assert out["overall"] == 0.375 and out["gap"]["value"] == 0.75 and out["gap"]["between"] == ["F", "M"]
    low, high = out["groups"]["F"]["ci"]
    assert 0.0 <= low < 0.75 < high == 1.0
    assert 0.0 <= out["gap"]["ci"][0] < 0.75 < out["gap"]["ci"][1] <= 1.0


def test_fairness_eval_on_scripted_answers_matches_the_hand_count(held_out, scripted_assistant):
    from multimodal.data import load_samples

    items = items_from_samples(load_samples(held_out))
    assert len(items) == 32 and items[0].question == "What modality, body part and view is this scan?"
    result = fairness_eval(scripted_assistant, items, n_boot=100)
    groups = result["groups"]
    assert {g: (r["n"], r["accuracy"]) for g, r in groups["sex"]["groups"].items()} == {"F": (16, 0.875),
                                                                                       "M": (16, 0.0)}
    assert groups["sex"]["gap"]["value"] == 0.875 and groups["sex"]["gap"]["between"] == ["F", "M"]
    assert {g: (r["n"], r["accuracy"]) for g, r in groups["age_band"]["groups"].items()} == {
        b: (8, 0.4375) for b in ("20-29", "40-49", "60-69", "80-89")}
    assert groups["age_band"]["gap"]["value"] == 0.0 and groups["age_band"]["gap"]["between"] == []
    assert result["accuracy"] == 0.4375 and result["scored"] == 32
    assert result["counterfactual"] == {
        "sex": {"n": 32, "text_changed": 32, "fields_changed": 32, "text_change_rate": 1.0, "field_change_rate": 1.0},
        "age_band": {"n": 32, "text_changed": 16, "fields_changed": 0, "text_change_rate": 0.5,
                     "field_change_rate": 0.0}}
    table = fairness_markdown(result)
    assert "| sex | F | 16 | 0.875 |" in table and "| sex only | 32 | 32 (100.0%) | 32 (100.0%) |" in table
    assert "| age_band only | 32 | 16 (50.0%) | 0 (0.0%) |" in table
    assert "| age_band | **largest gap** (all groups equal) | | 0.000 |" in table


def test_only_the_changed_field_of_the_dicom_line_differs(held_out, scripted_assistant):
    from multimodal.data import load_samples
    from tests.scripted import scripted

    prompts = []
    assistant = scripted(scripted_assistant, lambda p: prompts.append(p) or script(p))
    two = items_from_samples(load_samples(held_out))[:2]  # the CT of a woman aged 20-29, and aged 40-49
    fairness_eval(assistant, two, n_boot=10)
    lines = [next(ln for ln in p.splitlines() if ln.startswith("Image 1:")) for p in prompts]
    head = "Image 1: DICOM modality CT (computed tomography), body part HEAD"
    assert lines == [f"{head}, age 20-29, sex F", f"{head}, age 40-49, sex F",  # as recorded
                     f"{head}, age 20-29, sex M", f"{head}, age 40-49, sex M",  # sex only
                     f"{head}, age 40-49, sex F", f"{head}, age 20-29, sex F"]  # age band only, to the other band


def test_medany_eval_fairness_runs_the_assistant_of_the_config(held_out, tmp_path, monkeypatch, capsys):
    from multimodal import evaluate
    from tests.scripted import scripted

    load = Assistant.load.__func__
    monkeypatch.setattr(Assistant, "load", classmethod(lambda cls, config=None: scripted(load(cls, config), script)))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"data": str(held_out), "eval_data": str(held_out), "llm": "tiny-random",
                                  "image_encoder": "tiny_vit", "output_dir": str(tmp_path / "run")}))
    assert evaluate.main([str(config), "--fairness", "--image-projector", "none", "--bootstrap", "50",
                          "--out", str(tmp_path / "fair.json")]) == 0
    out = capsys.readouterr()
    result = json.loads(out.out)["fairness"]
    assert result["groups"]["sex"]["groups"]["F"]["accuracy"] == 0.875
    assert result["stack"]["image_projector"] == "none"
    assert "| sex only | 32 | 32 (100.0%) |" in out.err
    assert json.loads((tmp_path / "fair.json").read_text())["fairness"]["counterfactual"]["age_band"]["n"] == 32
    assert evaluate.main([str(config), "--fairness"]) == 2  # no trained projector in the run's folder
    assert "--image-projector auto" in capsys.readouterr().err
