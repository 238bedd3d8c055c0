"""The transformers backend: HF generate on the fusion model, token by token."""

import threading
import time

import torch

from encoders import create_encoder
from multimodal.backends import GenerationSettings, text_pieces
from multimodal.backends.hf import TransformersBackend
from multimodal.media import MediaBatch
from multimodal.model import MedAnyModel
from multimodal.template import encode_conversation
from projectors import create_projector


def _model(tiny_llm):
    llm, tok = tiny_llm
    enc = create_encoder("tiny_vit")
    return MedAnyModel(llm, tok, {"image": enc}, {"image": create_projector("mlp2x_gelu", enc.out_dim, 64)})


def test_streamed_ids_equal_generate_with_media(tiny_llm):
    model = _model(tiny_llm)
    backend = TransformersBackend(model)
    tok = model.tokenizer
    x = torch.randn(1, 3, 32, 32)
    n = model.token_counts("image", [create_encoder("tiny_vit").num_tokens()])
    msgs = [{"role": "user", "content": "<image>\nwhat is it?"}]
    ids = encode_conversation(tok, msgs, {"image": n}).input_ids
    media = model.encode_all(MediaBatch.of(image=x))
    settings = GenerationSettings(max_new_tokens=7, repetition_penalty=1.2)
    got = list(backend.generate_ids(ids, media, settings))
    ref = model.generate(ids[None], media=MediaBatch.of(image=x), eos_token_id=sorted(backend.stop_ids),
                         **settings.hf_kwargs())[0].tolist()
    assert got == [t for t in ref if t not in backend.stop_ids]
    assert "".join(text_pieces(tok, got)) == tok.decode(got, skip_special_tokens=True)
    logits = backend.next_token_logits(ids, media)
    assert logits.shape == (len(tok),) and int(logits.argmax()) == ref[0]


def test_should_stop_ends_generation_between_tokens(tiny_llm):
    backend = TransformersBackend(_model(tiny_llm))
    ids = encode_conversation(backend.tokenizer, [{"role": "user", "content": "hi"}]).input_ids
    seen = []
    stop = threading.Event()

    def should_stop():
        return stop.is_set()

    for token in backend.generate_ids(ids, {}, GenerationSettings(max_new_tokens=50), should_stop):
        seen.append(token)
        if len(seen) == 1:
            time.sleep(0.5)  # a slow consumer (a loaded machine): generation runs ahead into the queue
        if len(seen) == 3:
            stop.set()
    assert len(seen) == 3  # nothing is yielded once the caller asked to stop, however far generation ran ahead


def test_answer_logprobs_with_media_before_them(tiny_llm):
    model = _model(tiny_llm)
    backend = TransformersBackend(model)
    tok = model.tokenizer
    n_img = model.token_counts("image", [create_encoder("tiny_vit").num_tokens()])
    ids = encode_conversation(tok, [{"role": "user", "content": "<image>\nwhat is it?"},
                                    {"role": "assistant", "content": "A chest film"}],
                              {"image": n_img}, add_generation_prompt=False).input_ids
    media = model.encode_all(MediaBatch.of(image=torch.randn(1, 3, 32, 32)))
    got = backend.answer_logprobs(ids[:-3], media, ids[-3:])  # [3]
    logp = torch.log_softmax(model.logits_from(ids[None], media)[0].float(), dim=-1)  # [L, V]
    want = torch.stack([logp[i - 1, ids[i]] for i in range(len(ids) - 3, len(ids))])
    torch.testing.assert_close(got, want)
    assert (got < 0).all()
    logits = backend.answer_logits(ids[:-3], media, ids[-3:])  # [3, V]: the whole distribution (distillation)
    assert logits.shape == (3, logp.shape[-1])
    torch.testing.assert_close(torch.log_softmax(logits.float(), -1), logp[len(ids) - 4:-1])


def test_sequence_logits_are_every_position_of_a_text_prompt(tiny_llm):
    model = _model(tiny_llm)
    backend = TransformersBackend(model)
    ids = torch.randint(0, 250, (10,))
    got = backend.sequence_logits(ids)  # [L, V]
    torch.testing.assert_close(got, model.llm(ids[None]).logits[0].detach().float())
    torch.testing.assert_close(torch.log_softmax(got[4], -1)[ids[5]], backend.answer_logprobs(ids[:5], {}, ids[5:6])[0])


def test_a_backend_without_scoring_names_those_that_score():
    import pytest

    from multimodal.backends.base import Backend
    from multimodal.errors import ScoringUnsupportedError

    class Remote(Backend):
        name = "remote"

        def generate_ids(self, input_ids, media, settings, should_stop=None):
            yield from ()

        def next_token_logits(self, input_ids, media):
            return torch.zeros(4)

    with pytest.raises(ScoringUnsupportedError, match="transformers and llama.cpp backends can"):
        Remote().answer_logprobs(torch.tensor([1, 2]), {}, torch.tensor([3]))
    with pytest.raises(ScoringUnsupportedError):
        Remote().answer_logits(torch.tensor([1, 2]), {}, torch.tensor([3]))
