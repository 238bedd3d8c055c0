import pytest
import torch

from encoders import create_encoder
from multimodal.errors import PlaceholderMismatchError
from multimodal.kernels import use_span_ids
from multimodal.media import MediaBatch
from multimodal.model import MedAnyModel, splice_media
from multimodal.template import MEDIA_TOKEN_IDS, encode_conversation
from projectors import create_projector

D_LLM = 64  # tiny-random hidden size


@pytest.fixture()
def model(tiny_llm):
    llm, tok = tiny_llm
    enc = create_encoder("tiny_vit")
    proj = create_projector("mlp2x_gelu", enc.out_dim, D_LLM)
    return MedAnyModel(llm, tok, {"image": enc}, {"image": proj})


def _prompt(tok, content, media_tokens=None, **kw):
    return encode_conversation(tok, [{"role": "user", "content": content}], media_tokens, **kw)


def test_text_only_generation_equals_bare_llm(model):
    from multimodal.backbone import load_llm

    bare_llm, tok, _ = load_llm("tiny-random")  # same seed, the LLM's own (sdpa) attention
    assert model.llm.config._attn_implementation == "medany_spans"
    assert bare_llm.config._attn_implementation != "medany_spans"
    ids = _prompt(tok, "Describe a normal chest X-ray.").input_ids[None]
    ours = model.generate(ids, max_new_tokens=12, do_sample=False)
    bare = bare_llm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                             pad_token_id=tok.pad_token_id)
    assert torch.equal(ours[0], bare[0, ids.shape[1]:])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, bare_llm(ids).logits, rtol=0, atol=0)


def test_image_tokens_attend_bidirectionally_text_stays_causal(tiny_llm):
    llm, tok = tiny_llm
    enc = create_encoder("tiny_vit")
    proj = create_projector("linear", enc.out_dim, D_LLM)
    bidi = MedAnyModel(llm, tok, {"image": enc}, {"image": proj})
    n = enc.num_tokens()
    ids = _prompt(tok, "before <image> after", {"image": [n]}).input_ids[None]
    media = MediaBatch.of(image=torch.randn(1, 3, 32, 32))
    span = bidi.span_ids(ids)
    assert span is not None and set(span.unique().tolist()) == {0, 1}
    with torch.no_grad():
        logits_bidi = bidi(ids, media=media).logits
        bidi.image_attention = "causal"  # same weights, spans switched off
        logits_causal = bidi(ids, media=media).logits
    is_img = (ids[0] == MEDIA_TOKEN_IDS["image"]).nonzero().flatten()
    first, last = int(is_img[0]), int(is_img[-1])
    torch.testing.assert_close(logits_bidi[:, :first], logits_causal[:, :first], rtol=0, atol=0)
    assert not torch.allclose(logits_bidi[:, first:last], logits_causal[:, first:last])


def test_causal_image_attention_keeps_the_llm_attention():
    from multimodal.backbone import load_llm

    llm, tok, _ = load_llm("tiny-random")
    before = llm.config._attn_implementation
    model = MedAnyModel(llm, tok, image_attention="causal")
    assert model.llm.config._attn_implementation == before
    with pytest.raises(ValueError, match="image_attention"):
        MedAnyModel(llm, tok, image_attention="sideways")


def test_splice_puts_features_exactly_at_placeholders(model):
    tok = model.tokenizer
    n = model.encoders["image"].num_tokens()
    enc = _prompt(tok, "a <image> b <image> c", {"image": [n, n]})
    ids = enc.input_ids[None]
    pixels = torch.randn(2, 3, 32, 32)
    feats = model.encode("image", pixels)
    assert feats.shape == (2 * n, D_LLM)
    embeds = model.embed(ids, {"image": feats})
    mask = ids[0] == MEDIA_TOKEN_IDS["image"]
    torch.testing.assert_close(embeds[0, mask], feats)
    text_embeds = model.llm.get_input_embeddings()(ids[0, ~mask])
    torch.testing.assert_close(embeds[0, ~mask], text_embeds)


def test_batched_splice_matches_one_by_one(model):
    tok = model.tokenizer
    n = model.encoders["image"].num_tokens()
    a = _prompt(tok, "<image> first!", {"image": [n]}).input_ids
    b = _prompt(tok, "second <image>", {"image": [n]}).input_ids
    assert a.shape == b.shape  # same length by construction, no padding needed
    pixels = torch.randn(2, 3, 32, 32)
    batched = model.embed(torch.stack([a, b]), {"image": model.encode("image", pixels)})
    single_a = model.embed(a[None], {"image": model.encode("image", pixels[:1])})
    single_b = model.embed(b[None], {"image": model.encode("image", pixels[1:])})
    torch.testing.assert_close(batched, torch.cat([single_a, single_b]))


def test_mismatched_feature_count_raises(model):
    tok = model.tokenizer
    ids = _prompt(tok, "<image>", {"image": [5]}).input_ids[None]
    with pytest.raises(PlaceholderMismatchError, match="reserves 5 image"):
        model.embed(ids, {"image": torch.zeros(4, D_LLM)})
    with pytest.raises(PlaceholderMismatchError, match="produced 0"):
        model.embed(ids, {})
    text_ids = _prompt(tok, "no media").input_ids[None]
    with pytest.raises(PlaceholderMismatchError):
        splice_media(model.embed(text_ids), text_ids, "image", torch.zeros(2, D_LLM))


def test_gradients_reach_only_the_projector(model):
    tok = model.tokenizer
    n = model.encoders["image"].num_tokens()
    msgs = [{"role": "user", "content": "<image> what?"}, {"role": "assistant", "content": "a film"}]
    enc = encode_conversation(tok, msgs, {"image": [n]}, add_generation_prompt=False)
    out = model(enc.input_ids[None], labels=enc.labels[None], media=MediaBatch.of(image=torch.randn(1, 3, 32, 32)))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.projectors.parameters())
    assert all(p.grad is None for p in model.encoders.parameters())
    assert all(p.grad is None for p in model.llm.parameters())


def test_valid_tokens_trim_padding_per_item(tiny_llm):
    llm, tok = tiny_llm
    enc = create_encoder("tiny_vit")
    proj = create_projector("concat4", enc.out_dim, D_LLM)
    model = MedAnyModel(llm, tok, {"audio": enc}, {"audio": proj})
    x = torch.randn(2, 3, 32, 32)
    feats = model.encode("audio", x, valid_tokens=[16, 5])  # -> 4 + 2 projected tokens
    assert feats.shape == (6, D_LLM)
    full = proj(enc(x))
    torch.testing.assert_close(feats, torch.cat([full[0, :4], full[1, :2]]))


@pytest.mark.slow
def test_text_only_equals_bare_embedded_llm(embedded_llm):
    from multimodal.backbone import load_llm

    _, tok, _ = embedded_llm
    llm, _, _ = load_llm("embedded-small")  # a private copy: MedAnyModel switches its attention
    bare_llm, _, _ = load_llm("embedded-small")
    model = MedAnyModel(llm, tok)
    msgs = [{"role": "user", "content": "What does a chest X-ray show?"}]
    ids = encode_conversation(tok, msgs).input_ids[None]
    ref_ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt",
                                      return_dict=True)["input_ids"]
    assert torch.equal(ids, ref_ids)
    ours = model.generate(ids, max_new_tokens=16, do_sample=False)
    bare = bare_llm.generate(ref_ids, attention_mask=torch.ones_like(ref_ids), max_new_tokens=16, do_sample=False)
    assert torch.equal(ours[0], bare[0, ids.shape[1]:])
    assert len(tok.decode(ours[0], skip_special_tokens=True).split()) >= 5


def test_loss_on_supervised_positions_equals_the_llm_loss(model):
    """The logits head runs only where a label is supervised; loss and gradients stay the LLM's own."""
    tok = model.tokenizer
    n = model.encoders["image"].num_tokens()
    rows = []
    for question, reply in (("<image> what is this?", "a film"), ("describe <image> briefly", "a chest radiograph")):
        msgs = [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]
        rows.append(encode_conversation(tok, msgs, {"image": [n]}, add_generation_prompt=False))
    width = max(len(r.input_ids) for r in rows)
    ids = torch.stack([torch.nn.functional.pad(r.input_ids, (0, width - len(r.input_ids)), value=tok.pad_token_id)
                       for r in rows])  # [B, L], right-padded
    labels = torch.stack([torch.nn.functional.pad(r.labels, (0, width - len(r.labels)), value=-100) for r in rows])
    mask = (torch.arange(width)[None] < torch.tensor([[len(r.input_ids)] for r in rows])).long()
    media = MediaBatch.of(image=torch.randn(2, 3, 32, 32))

    out = model(ids, attention_mask=mask, labels=labels, media=media)
    out.loss.backward()
    ours = [p.grad for p in model.projectors.parameters()]
    model.projectors.zero_grad(set_to_none=True)
    embeds = model.embed(ids, model.encode_all(media))
    with use_span_ids(model.span_ids(ids)):
        full = model.llm(inputs_embeds=embeds, attention_mask=mask, labels=labels)  # HF's loss over all logits
    full.loss.backward()
    torch.testing.assert_close(out.loss, full.loss, rtol=1e-6, atol=1e-6)
    for mine, theirs in zip(ours, (p.grad for p in model.projectors.parameters())):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-7)
    supervised = int((labels[:, 1:] != -100).any(0).sum())
    assert out.logits.shape[1] == supervised < width - 1  # the prompt's positions never reach the head
