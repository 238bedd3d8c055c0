"""Scoring generated replies: field lines, fields named in a sentence, word error rate."""

import pytest

from multimodal.data import Sample
from multimodal.evaluate import _score, names_only, word_error_rate

MODALITIES = {"CR", "CT", "MR", "US", "OT"}


def test_a_sentence_names_one_value_and_no_other():
    assert names_only("This is a CT (computed tomography) image of the head.", "CT", MODALITIES)
    assert not names_only("This is a CT or MR image.", "CT", MODALITIES)
    assert not names_only("An image with no code.", "CT", MODALITIES)


def test_short_codes_match_case_sensitively_and_as_whole_words():
    assert not names_only("Let us look at it.", "US", MODALITIES)
    assert names_only("An US image.", "US", MODALITIES)
    assert not names_only("CTA shows vessels.", "CT", MODALITIES)
    assert names_only("Image of the chest.", "CHEST", {"CHEST", "HEAD"})


def _rows(*pairs):
    return [(Sample(i, [], {}, str(i), {"fields": fields}), "", reply) for i, (fields, reply) in enumerate(pairs)]


def test_score_reads_field_lines_first_then_sentences():
    rows = _rows(({"modality": "CT"}, "Modality: CT"),
                 ({"modality": "MR"}, "This is an MR (magnetic resonance) image."),
                 ({"modality": "CR"}, "Modality: CT\nThis is a CR image."),  # the line wins, and it is wrong
                 ({"modality": "CR"}, "Probably CR, maybe MR."))
    assert _score(rows)["field_accuracy"] == {"modality": 0.5}


def test_word_error_rate_counts_word_edits():
    assert word_error_rate(["I have a cough"], ["i have cough"]) == 0.25


def test_evaluate_decodes_each_held_out_medium_once(tmp_path):
    from encoders import create_encoder
    from multimodal.config import StackConfig
    from multimodal.data import load_samples
    from multimodal.evaluate import evaluate
    from multimodal.media import media_loader
    from multimodal.pipeline import Assistant
    from projectors import create_projector, save_projector
    from tests.multimodal.train_helpers import make_image_set

    proj = save_projector(create_projector("mlp2x_gelu", create_encoder("tiny_vit").out_dim, 64), tmp_path / "p",
                          encoder="tiny_vit", llm="tiny-random")
    model = Assistant.load(StackConfig(llm="tiny-random", vision="tiny_vit", speech="",
                                       image_projector=str(proj))).model
    samples = load_samples(make_image_set(tmp_path / "data"))
    load, _ = media_loader(dict(model.encoders.items()), model.device)
    calls = []

    def media_fn(kind, path):
        calls.append(path.name)
        return load(kind, path)

    result = evaluate(model, samples, media_fn, max_new_tokens=3)
    assert sorted(calls) == sorted(p.name for s in samples for p in s.media["image"])  # once each
    assert result["samples"] == 4 and result["tokens"] > 0 and "colour" in result["field_accuracy"]


def test_sample_losses_are_each_items_own_loss_and_average_to_the_teacher_forced_loss(tmp_path):
    from encoders import create_encoder
    from multimodal.config import StackConfig
    from multimodal.data import ConversationDataset, load_samples
    from multimodal.evaluate import sample_losses, teacher_forced_loss
    from multimodal.media import encoder_token_counts, media_loader
    from multimodal.pipeline import Assistant
    from multimodal.template import IGNORE_INDEX
    from projectors import create_projector, save_projector
    from tests.multimodal.train_helpers import make_image_set

    proj = save_projector(create_projector("mlp2x_gelu", create_encoder("tiny_vit").out_dim, 64), tmp_path / "p",
                          encoder="tiny_vit", llm="tiny-random")
    model = Assistant.load(StackConfig(llm="tiny-random", vision="tiny_vit", speech="",
                                       image_projector=str(proj))).model
    samples = load_samples(make_image_set(tmp_path / "data"))
    samples[1].messages[-1]["content"] += " and a much longer reply than the others"  # unequal token counts
    media_fn, _ = media_loader(dict(model.encoders.items()), model.device)
    ds = ConversationDataset(samples, model.tokenizer, media_fn, model.token_counts,
                             encoder_tokens=encoder_token_counts(dict(model.encoders.items()), media_fn, samples))
    items = [ds[i] for i in range(len(ds))]
    losses = sample_losses(model, items, batch_size=3)  # padding in a batch changes nothing
    assert losses == pytest.approx([teacher_forced_loss(model, [it])[0] for it in items], rel=1e-5)
    tokens = [int((it["labels"][1:] != IGNORE_INDEX).sum()) for it in items]
    mean, n = teacher_forced_loss(model, items)
    assert n == sum(tokens) and len(set(tokens)) > 1
    assert sum(v * t for v, t in zip(losses, tokens)) / n == pytest.approx(mean, rel=1e-5)
