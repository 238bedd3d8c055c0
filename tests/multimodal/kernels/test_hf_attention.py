"""``medany_spans`` inside a tiny random Llama: plain causal without spans, image spans
bidirectional with them, identical across the SDPA, reference and Triton backends."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from multimodal.kernels.dispatch import forced_attention_backend  # noqa: E402
from multimodal.kernels.hf_attention import align_span_ids, register_hf_attention, use_span_ids  # noqa: E402
from multimodal.kernels.masks import dense_mask  # noqa: E402

L, IMG = 20, slice(6, 14)  # image placeholder tokens at 6..13


@pytest.fixture(scope="module")
def llama():
    name = register_hf_attention()
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, vocab_size=128,
                                   max_position_embeddings=128)
    model = transformers.LlamaForCausalLM(cfg).eval()
    ids = torch.randint(0, 128, (2, L), generator=torch.Generator().manual_seed(1))
    span = torch.zeros(2, L, dtype=torch.long)
    span[:, IMG] = 1
    return model, name, ids, span


def logits(model, impl, ids, **kw):
    model.set_attn_implementation(impl)
    with torch.no_grad():
        return model(ids, **kw).logits


def test_without_spans_equals_sdpa(llama):
    model, name, ids, _ = llama
    torch.testing.assert_close(logits(model, name, ids), logits(model, "sdpa", ids))
    # left padding: equal at every real position
    am = torch.ones(2, L, dtype=torch.long)
    am[0, :3] = 0
    a = logits(model, name, ids, attention_mask=am)
    b = logits(model, "sdpa", ids, attention_mask=am)
    torch.testing.assert_close(a[0, 3:], b[0, 3:])
    torch.testing.assert_close(a[1], b[1])


def test_image_span_is_bidirectional_text_before_is_unchanged(llama):
    model, name, ids, span = llama
    causal = logits(model, "sdpa", ids)
    spans = logits(model, name, ids, span_ids=span)
    torch.testing.assert_close(spans[:, : IMG.start], causal[:, : IMG.start])
    assert (spans[:, IMG.start] - causal[:, IMG.start]).abs().max() > 1e-3  # sees later image tokens
    assert (spans[:, IMG.stop:] - causal[:, IMG.stop:]).abs().max() > 1e-3  # text after sees changed states
    # the specification: sdpa with the dense causal_spans mask handed in as a custom 4D mask
    mask = dense_mask("causal_spans", span, span, L, L)
    torch.testing.assert_close(spans, logits(model, "sdpa", ids, attention_mask=mask))
    with forced_attention_backend("reference"):
        torch.testing.assert_close(spans, logits(model, name, ids, span_ids=span))


def test_triton_kernel_path_gives_the_same_logits(llama):
    pytest.importorskip("triton")
    model, name, ids, span = llama
    want = logits(model, name, ids, span_ids=span)
    with forced_attention_backend("triton"):  # interpreter on CPU, as CUDA would run it
        torch.testing.assert_close(logits(model, name, ids, span_ids=span), want, atol=1e-5, rtol=1e-5)


def test_generate_with_kv_cache_matches_full_recompute(llama):
    model, name, ids, span = llama
    model.set_attn_implementation(name)
    with torch.no_grad(), use_span_ids(span):
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False,
                             pad_token_id=0)
    assert out.shape == (2, L + 4)
    # greedy tokens recomputed without a cache: prompt spans, new tokens are text
    full = logits(model, name, out[:, :-1], span_ids=align_span_ids(span, L + 3))
    torch.testing.assert_close(full[:, L - 1:].argmax(-1), out[:, L:])
    # decoding differs from plain causal decoding once the image is bidirectional
    plain = logits(model, name, out[:, :-1])
    assert (plain[:, L - 1:] - full[:, L - 1:]).abs().max() > 1e-3


def test_align_span_ids():
    s = torch.tensor([[0, 1, 1]])
    assert align_span_ids(s, 5).tolist() == [[0, 1, 1, 0, 0]]
    assert align_span_ids(s, 2).tolist() == [[0, 1]]
