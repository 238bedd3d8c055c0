"""Recipes: generator determinism and held-out disjointness, and a CI-sized generate -> train -> eval.

The end-to-end runs use each recipe's ``config.ci.json`` with the tiny test
models swapped in (``tiny-random`` LLM, ``tiny_whisper`` / ``tiny_vit``
encoders); the real data generators, espeak-ng and pydicom's scans are used
as they are.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from multimodal.errors import InputError
from multimodal.evaluate import extract_field, extract_transcript
from multimodal.evaluate import main as eval_main
from multimodal.train import train
from multimodal.train_config import TrainConfig
from recipes.dataset import seeded
from recipes.image import make_data as image_data
from recipes.image.augment import pad_square, random_crop, view
from recipes.image.scans import split_groups, usable_scans
from recipes.speech import make_data as speech_data
from recipes.speech.sentences import TEMPLATES, all_utterances, split_utterances
from recipes.speech.speakers import HELD_OUT_VOICES, TRAIN_VOICES

REPO = Path(__file__).resolve().parents[2]
TINY = {"speech": ("audio", {"audio_encoder": "tiny_whisper"}), "image": ("image", {"image_encoder": "tiny_vit"})}
GENERATORS = {"speech": speech_data, "image": image_data}


def _records(shots) -> list[dict]:
    return [s.record() for s in shots]


# --- speech generator ---------------------------------------------------------------


def test_speech_grammar_gives_distinct_sentences_and_a_disjoint_split():
    every = [u.text for u in all_utterances()]
    assert len(every) == len(set(every)) == len(TEMPLATES) * 16 * 4 * 8
    train, held = split_utterances(seed=0)
    assert {u.text for u in train}.isdisjoint(u.text for u in held)
    assert len(train) + len(held) == len(every)


def test_speech_plan_is_deterministic_and_eval_does_not_depend_on_train_size():
    a, b = speech_data.plan(40, 10, seed=3), speech_data.plan(40, 10, seed=3)
    assert _records(a["train"]) == _records(b["train"]) and _records(a["eval"]) == _records(b["eval"])
    assert _records(speech_data.plan(40, 10, seed=4)["train"]) != _records(a["train"])
    assert _records(speech_data.plan(80, 10, seed=3)["eval"]) == _records(a["eval"])
    with pytest.raises(InputError):
        speech_data.plan(10**6, 10)


def test_speech_eval_holds_out_sentences_and_voices():
    clips = speech_data.plan(300, 40, seed=0)
    train, held = clips["train"], clips["eval"]
    train_texts, train_voices = {c.utterance.text for c in train}, {c.speaker.voice for c in train}
    assert train_texts.isdisjoint(c.utterance.text for c in held)
    by_group = {g: [c for c in held if c.group == g] for g in speech_data.GROUPS}
    assert all(len(v) == 20 for v in by_group.values())
    unseen_voices = {c.speaker.voice for c in by_group["unseen_voice"]}
    assert unseen_voices <= set(HELD_OUT_VOICES) and unseen_voices.isdisjoint(train_voices)
    assert {c.speaker.voice for c in by_group["unseen_sentence"]} <= set(TRAIN_VOICES)
    assert len(train_voices) > 3 and len({c.speaker.rate_wpm for c in train}) > 3


def test_every_recipe_voice_speaks():
    from multimodal.io.tts import synthesize

    for voice in TRAIN_VOICES + HELD_OUT_VOICES:
        assert synthesize("Hello.", voice=voice).duration_s > 0.2, voice


def test_speech_reply_is_scored_the_way_evaluate_reads_it():
    for clip in speech_data.plan(5, 4, seed=1)["train"]:
        rec = clip.record()
        reply = rec["conversations"][1]["value"]
        assert extract_transcript(reply) == rec["transcript"]
        assert all(extract_field(reply, k) == v for k, v in rec["fields"].items())
        assert extract_field(reply, "answer")


# --- image generator ----------------------------------------------------------------


def test_image_scans_group_reencodings_and_hold_out_whole_groups():
    scans = usable_scans()
    group = {s.name: s.group for s in scans}
    assert group["RG1_UNCR.dcm"] == group["RG1_J2KR.dcm"] == group["RG1_J2KI.dcm"] != group["RG3_UNCR.dcm"]
    train, held = split_groups(scans, seed=0)
    assert held and {s.group for s in train}.isdisjoint(s.group for s in held)
    assert {s.fields["modality"] for s in held} <= {s.fields["modality"] for s in train}


def test_image_plan_is_deterministic_and_disjoint():
    a, b = image_data.plan(30, 12, seed=2), image_data.plan(30, 12, seed=2)
    assert _records(a["train"]) == _records(b["train"]) and _records(a["eval"]) == _records(b["eval"])
    train_groups = {s.scan.group for s in a["train"]}
    unseen = [s for s in a["eval"] if s.group == "unseen_scan"]
    seen = [s for s in a["eval"] if s.group == "seen_scan"]
    assert len(unseen) == len(seen) == 6
    assert train_groups.isdisjoint(s.scan.group for s in unseen)
    assert {s.scan.group for s in seen} <= {s.group for s in split_groups(usable_scans(), 2)[0]}
    for shot in a["train"]:
        rec = shot.record()
        assert all(extract_field(rec["conversations"][1]["value"], k) == v for k, v in rec["fields"].items())


def test_image_augmentation_is_seeded_and_keeps_the_whole_crop():
    scan = next(s for s in usable_scans() if s.name == "CT_small.dcm")
    a, how_a = view(scan.path, scan.window, seeded(0, "x"), size=64)
    b, how_b = view(scan.path, scan.window, seeded(0, "x"), size=64)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b) and how_a == how_b
    assert isinstance(how_a["window"], list)  # CT: re-windowed in Hounsfield units
    x = np.ones((40, 100, 3), np.float32)
    crop = random_crop(x, seeded(0, "c"))
    assert 30 <= crop.shape[0] <= 40 and 75 <= crop.shape[1] <= 100
    sq = pad_square(x)
    assert sq.shape == (100, 100, 3) and sq.sum() == x.sum()


# --- end to end ---------------------------------------------------------------------


def _ci_config(recipe: str, data: Path, tmp_path: Path) -> Path:
    """The recipe's config.ci.json on the tiny models, reading ``data`` and writing under ``tmp_path``."""
    cfg = TrainConfig.from_file(REPO / "recipes" / recipe / "config.ci.json").to_dict()
    cfg.update(llm="tiny-random", **TINY[recipe][1], data=str(data / "train.jsonl"),
               eval_data=str(data / "eval.jsonl"), output_dir=str(tmp_path / "run"),
               feature_cache_dir=str(tmp_path / "features"))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def _finite(tree) -> bool:
    if isinstance(tree, dict):
        return all(_finite(v) for v in tree.values())
    return isinstance(tree, (int, float)) and math.isfinite(tree)


@pytest.mark.parametrize("recipe", ["speech", "image"])
def test_ci_recipe_generates_trains_and_evaluates(recipe, tmp_path, capsys):
    data = tmp_path / "data"
    assert GENERATORS[recipe].main([str(data), "--n-train", "4", "--n-eval", "4"]) == 0
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["train"] == 4 and sum(manifest["eval_groups"].values()) == 4

    config = _ci_config(recipe, data, tmp_path)
    metrics = train(TrainConfig.from_file(config))
    assert metrics["steps"] == 2 and math.isfinite(metrics["final_loss"])
    assert metrics["feature_cache"][TINY[recipe][0]]["computed"] == 4
    proj = tmp_path / "run" / f"{TINY[recipe][0]}_projector"
    assert (proj / "projector.safetensors").stat().st_size > 0
    assert json.loads((proj / "projector.json").read_text())["llm"] == "tiny-random"

    capsys.readouterr()
    assert eval_main([str(config), "--out", str(tmp_path / "eval.json")]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    groups = GENERATORS[recipe].GROUPS
    assert result["samples"] == 4 and set(result["groups"]) == set(groups)
    scores = {k: result[k] for k in ("loss", "perplexity", "exact_match", "field_accuracy")}
    fields = {"speech": {"symptom", "duration"}, "image": {"modality"}}[recipe]
    assert fields <= set(result["field_accuracy"]) and _finite(scores)
    if recipe == "speech":
        assert _finite(result["wer"]) and all("wer" in g for g in result["groups"].values())


# --- image recipe, assistant format ------------------------------------------------------


def test_caption_sentence_names_every_recorded_field():
    from recipes.image.assistant_format import caption_sentence

    assert caption_sentence({"modality": "CR", "body_part": "CHEST", "view": "PA"}) == (
        "This is a CR (computed radiography) image of the chest, PA view.")
    assert caption_sentence({"modality": "MR"}) == "This is an MR (magnetic resonance) image."
    assert caption_sentence({"modality": "PX"}) == "This is a PX image."


def test_assistant_format_uses_the_pipeline_prompt_and_distills_open_answers(tmp_path):
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant, Request
    from multimodal.prompt import SYSTEM_PROMPT
    from recipes.image.assistant_format import CAPTION_QUESTIONS, OPEN_QUESTIONS, AssistantFormat

    assistant = Assistant.load(StackConfig(llm="tiny-random", vision="tiny_vit", speech="", max_new_tokens=6,
                                           knowledge="none"))
    manifest = image_data.make_dataset(tmp_path, 16, 2, style="assistant", assistant=assistant)
    records = {s: [json.loads(line) for line in (tmp_path / f"{s}.jsonl").read_text().splitlines()]
               for s in ("train", "eval")}
    assert manifest["style"] == "assistant"
    fmt = AssistantFormat(seeded(0, "form"), assistant)
    assert {r["form"] for r in records["eval"]} == {"photo"}
    assert {r["form"] for r in records["train"]} <= {"photo", "dicom", "open"}
    for r in records["train"] + records["eval"]:
        system, human, gpt = (t["value"] for t in r["conversations"])
        assert system == SYSTEM_PROMPT and human.startswith("Image 1: ") and "\n<image>\nQuestion: " in human
        question = human.rsplit("Question: ", 1)[1]
        if r["form"] == "open":
            assert question in OPEN_QUESTIONS and "fields" not in r
            fields = image_data.plan(16, 2)["train"][int(r["id"][-5:])].scan.fields
            assert gpt == fmt.open_answer(dict(fields), question)  # what the frozen LLM says without the image
        else:
            assert question in CAPTION_QUESTIONS and gpt.startswith("This is ")
        if r["form"] == "dicom":
            assert human.startswith("Image 1: DICOM modality ")
    photo = next(r for r in records["eval"])
    from multimodal.io import load_image

    line = assistant.describe_image(load_image(tmp_path / photo["image"]))
    assert photo["conversations"][1]["value"].startswith(f"Image 1: {line}\n")
    messages, _ = assistant.build_messages(Request("q", [load_image(tmp_path / photo["image"])]))
    assert messages[1]["content"].startswith(f"Image 1: {line}\n")

    # The records train and evaluate like any other data (2 steps on the tiny models).
    (tmp_path / "ci").mkdir()
    config = _ci_config("image", tmp_path, tmp_path / "ci")
    metrics = train(TrainConfig.from_file(config))
    assert metrics["steps"] == 2 and math.isfinite(metrics["final_loss"])
    assert "modality" in metrics["eval"]["field_accuracy"]  # sentences are scored by the field they name


# --- speech recipe, assistant format -----------------------------------------------------


def test_speech_assistant_format_wraps_each_clip_in_the_pipeline_prompt(tmp_path):
    from multimodal.config import StackConfig
    from multimodal.data import load_samples
    from multimodal.io import load_audio
    from multimodal.pipeline import Assistant
    from multimodal.prompt import SYSTEM_PROMPT
    from recipes.speech.assistant_format import convert
    from recipes.speech.sentences import PROMPT

    speech_data.make_dataset(tmp_path, 3, 2)
    assistant = Assistant.load(StackConfig(llm="tiny-random", vision="", speech="tiny_whisper", knowledge="none"))
    info = convert(tmp_path, assistant)
    assert info["train"]["records"] == 3 and info["eval"]["records"] == 2
    for split in ("train", "eval"):
        plain = [json.loads(x) for x in (tmp_path / f"{split}.jsonl").read_text().splitlines()]
        wrapped = [json.loads(x) for x in (tmp_path / f"{split}.assistant.jsonl").read_text().splitlines()]
        for p, w in zip(plain, wrapped):
            system, human, gpt = (t["value"] for t in w["conversations"])
            line = assistant.describe_audio(load_audio(tmp_path / p["audio"]))
            assert system == SYSTEM_PROMPT and human == f"Audio 1: {line}\n<audio>\nQuestion: {PROMPT}"
            assert gpt == p["conversations"][-1]["value"] and w["audio"] == p["audio"]
            assert w["transcript"] == p["transcript"] and w.get("group") == p.get("group")
        assert len(load_samples(tmp_path / f"{split}.assistant.jsonl")) == len(plain)


def test_frozen_answer_is_the_llm_reply_to_the_text_only_prompt():
    from multimodal.backbone import load_llm
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant
    from multimodal.prompt import chat_messages
    from multimodal.template import encode_conversation
    from recipes.distill import frozen_answer, whole_sentences

    assistant = Assistant.load(StackConfig(llm="tiny-random", vision="", speech="", knowledge="none"))
    llm, tok, _ = load_llm("tiny-random")
    ids = encode_conversation(tok, chat_messages(["Image 1: DICOM modality CR"], "Is this urgent?"), {},
                              add_generation_prompt=True).input_ids[None]
    out = llm.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=tok.pad_token_id,
                       **assistant.generation_settings(max_new_tokens=8).hf_kwargs())[0, ids.shape[1]:]
    expected = whole_sentences(tok.decode(out, skip_special_tokens=True))
    assert frozen_answer(assistant, ["Image 1: DICOM modality CR"], "Is this urgent?", max_new_tokens=8) == expected
    assert whole_sentences("It is fine. Rest and") == "It is fine."
    assert whole_sentences("No full stop") == "No full stop"
