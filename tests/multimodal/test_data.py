import json

import pytest
import torch

from multimodal.data import ConversationDataset, DatasetError, check_supervision, collate, load_samples
from multimodal.errors import InputError
from multimodal.template import IGNORE_INDEX, MEDIA_TOKEN_IDS
from tests.multimodal.train_helpers import make_audio_set, make_image_set


def _write(path, records, jsonl=True):
    if jsonl:
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    else:
        path.write_text(json.dumps(records, indent=2))
    return path


def _rec(**kw):
    rec = {"conversations": [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A scan."}]}
    rec.update(kw)
    return rec


def test_loads_jsonl_with_media_lists_and_extra_fields(tmp_path):
    make_image_set(tmp_path)
    _write(tmp_path / "d.jsonl", [
        _rec(image="red.png", fields={"modality": "CT"}),
        {"image": ["red.png", "blue.png"],
         "messages": [{"role": "user", "content": "<image> and <image>?"}, {"role": "assistant", "content": "Two."}]},
    ])
    samples = load_samples(tmp_path / "d.jsonl")
    assert [s.line for s in samples] == [1, 2]
    assert samples[0].extra == {"fields": {"modality": "CT"}}
    assert [p.name for p in samples[1].media["image"]] == ["red.png", "blue.png"]
    assert samples[1].messages[1]["role"] == "assistant"


def test_missing_placeholders_are_prepended_llava_style(tmp_path):
    make_image_set(tmp_path)
    rec = {"image": ["red.png", "blue.png"],
           "conversations": [{"from": "human", "value": "Compare."}, {"from": "gpt", "value": "Same."}]}
    _write(tmp_path / "d.jsonl", [rec])
    (s,) = load_samples(tmp_path / "d.jsonl")
    assert s.messages[0]["content"] == "<image>\n<image>\nCompare."


def test_json_array_problems_carry_line_numbers(tmp_path):
    make_image_set(tmp_path)
    records = [_rec(image="red.png"), _rec(image="nope.png"), _rec(image="red.png", conversations=[
        {"from": "human", "value": "<image><image>"}, {"from": "gpt", "value": "x"}])]
    _write(tmp_path / "d.json", records, jsonl=False)
    text = (tmp_path / "d.json").read_text().splitlines()
    starts = [i + 1 for i, ln in enumerate(text) if ln == "  {"]
    with pytest.raises(DatasetError) as err:
        load_samples(tmp_path / "d.json")
    lines = [n for n, _ in err.value.problems]
    assert lines == starts[1:]
    assert "not found" in err.value.problems[0][1]
    assert "2 <image> placeholder(s) but 1 image file(s)" in err.value.problems[1][1]
    assert isinstance(err.value, InputError) and "nope.png" not in str(err.value)


def test_every_jsonl_problem_is_reported_with_its_line(tmp_path):
    make_image_set(tmp_path)
    _write(tmp_path / "d.jsonl", [
        _rec(image="red.png"),
        "{not json",
        {"conversations": [{"from": "doctor", "value": "hi"}]},
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "  "}]},
        {"text": "no conversation"},
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "<image>"}], "image": "red.png"},
    ])
    with pytest.raises(DatasetError) as err:
        load_samples(tmp_path / "d.jsonl")
    got = dict(err.value.problems)
    assert sorted(got) == [2, 3, 4, 5, 6]
    assert "not valid JSON" in got[2]
    assert "unknown speaker" in got[3]
    assert "no assistant" in got[4]
    assert "conversations" in got[5]
    assert "placeholders" in got[6]
    assert "line 2:" in str(err.value)


def test_supervision_check_passes_and_counts_tokens(tmp_path, tiny_llm):
    _, tok = tiny_llm
    samples = load_samples(make_image_set(tmp_path))
    stats = check_supervision(samples, tok)
    assert stats["samples"] == 4 and stats["min_supervised_tokens"] >= len("Colour: red")


def test_supervision_check_refuses_a_template_that_drops_replies(tmp_path, tiny_llm):
    _, tok = tiny_llm
    samples = load_samples(make_image_set(tmp_path))
    broken = tok.__class__.from_pretrained(_save(tok, tmp_path / "tok"))
    broken.chat_template = ("{% for m in messages %}{% if m['role'] == 'user' %}<|im_start|>user\n"
                            "{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
                            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    with pytest.raises(DatasetError, match="Refusing to train") as err:
        check_supervision(samples, broken)
    assert [n for n, _ in err.value.problems] == [1, 2, 3, 4]


def test_supervision_check_catches_a_reply_that_does_not_round_trip(tmp_path, tiny_llm):
    _, tok = tiny_llm
    samples = load_samples(make_image_set(tmp_path))
    lossy = tok.__class__.from_pretrained(_save(tok, tmp_path / "tok"))
    lossy.chat_template = tok.chat_template.replace("{{ m['content'] }}", "{{ m['content'] | lower }}")
    with pytest.raises(DatasetError, match="round trip"):
        check_supervision(samples, lossy)


def _save(tok, path):
    tok.save_pretrained(path)
    return path


def test_dataset_and_collate_pad_right_and_keep_media_order(tmp_path, tiny_llm):
    from encoders import create_encoder

    _, tok = tiny_llm
    samples = load_samples(make_image_set(tmp_path)) + load_samples(make_audio_set(tmp_path))
    vit, wh = create_encoder("tiny_vit"), create_encoder("tiny_whisper")

    def media_fn(kind, path):
        from multimodal.io import load_audio, load_image

        if kind == "image":
            return vit.preprocess(load_image(path).pixels), None
        clip = load_audio(path)
        return wh.preprocess(clip), wh.valid_frames(clip)

    ds = ConversationDataset(samples, tok, media_fn, lambda kind, n: [(k + 3) // 4 for k in n],
                             encoder_tokens={"image": vit.num_tokens()})
    items = [ds[0], ds[4], ds[5]]
    batch = collate(items, tok.pad_token_id)
    lengths = [it["input_ids"].numel() for it in items]
    b, length = batch["input_ids"].shape
    assert (b, length) == (3, max(lengths))
    for r, n in enumerate(lengths):
        assert batch["attention_mask"][r].tolist() == [1] * n + [0] * (length - n)
        assert (batch["input_ids"][r, n:] == tok.pad_token_id).all()
        assert (batch["labels"][r, n:] == IGNORE_INDEX).all()
    x, valid = batch["media"]["audio"].x, batch["media"]["audio"].valid
    assert x.shape == (2, 80, 3000) and valid == [20, 35]  # 0.4 s and 0.7 s at 20 ms per token
    assert int((batch["input_ids"] == MEDIA_TOKEN_IDS["audio"]).sum()) == (20 + 3) // 4 + (35 + 3) // 4
    img, img_valid = batch["media"]["image"].x, batch["media"]["image"].valid
    assert img.shape[0] == 1 and img_valid is None
    assert int((batch["input_ids"][0] == MEDIA_TOKEN_IDS["image"]).sum()) == (vit.num_tokens() + 3) // 4
    assert torch.equal(batch["index"] and torch.tensor(batch["index"]), torch.tensor([0, 4, 5]))


def test_too_long_sample_names_its_line(tmp_path, tiny_llm):
    _, tok = tiny_llm
    samples = load_samples(make_image_set(tmp_path))
    ds = ConversationDataset(samples, tok, lambda k, p: (torch.zeros(3, 32, 32), None), lambda k, n: n,
                             encoder_tokens={"image": 16}, max_length=20)
    with pytest.raises(DatasetError, match="line 2"):
        ds[1]
