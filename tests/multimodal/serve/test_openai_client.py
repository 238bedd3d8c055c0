"""The official ``openai`` client against a live server: text, image, DICOM, audio, streaming, models, auth.

The tiny random LLM answers in whitespace, so these check the protocol (ids,
objects, usage, finish reasons, chunk framing) and that each medium reached
the prompt (more prompt tokens, its hash in the audit line); content is
checked with the scripted echo model.
"""

from __future__ import annotations

import uuid

import pytest

from tests.multimodal.serve import serve_helpers as h

openai = pytest.importorskip("openai")


def client_for(server, key: str = "unused") -> "openai.OpenAI":
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def client(live):
    return client_for(live)


def ask(client, content, **kw):
    return client.chat.completions.create(model="medany", messages=[{"role": "user", "content": content}],
                                          max_tokens=4, **kw)


def check_completion(r, max_tokens: int = 4):
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == "medany"
    assert len(r.choices) == 1 and r.choices[0].message.role == "assistant"
    assert isinstance(r.choices[0].message.content, str)
    assert r.choices[0].finish_reason in ("stop", "length")
    assert 1 <= r.usage.completion_tokens <= max_tokens
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    return r


QUESTION = "What does this show?"


@pytest.fixture(scope="module")
def text_only(client):
    """The question alone: the media tests compare their prompt length with it."""
    return check_completion(ask(client, QUESTION))


def test_models_lists_the_served_model(client):
    models = client.models.list().data
    assert [m.id for m in models] == ["medany"]
    assert client.models.retrieve("medany").owned_by == "medany"


def test_text(text_only, client):
    assert text_only.usage.prompt_tokens > 10
    again = check_completion(ask(client, QUESTION))
    assert again.id != text_only.id and again.usage.prompt_tokens == text_only.usage.prompt_tokens


def test_image_png_data_url(client, live, text_only):
    png = h.png_bytes()
    r = check_completion(ask(client, [{"type": "text", "text": QUESTION}, h.image_part(png)]))
    assert r.usage.prompt_tokens > text_only.usage.prompt_tokens  # "Image 1: ..." reached the prompt
    line = next(x for x in h.audit_lines(live) if x["request_id"] == r.id)
    assert line["status"] == 200 and line["inputs"] == [{"kind": "image", "sha256": h.sha256(png), "bytes": len(png)}]


def test_dicom_data_url(client, live, text_only):
    dcm = h.dicom_bytes("CT_small.dcm")
    r = check_completion(ask(client, [{"type": "text", "text": QUESTION},
                                      h.image_part(dcm, "application/dicom")]))
    assert r.usage.prompt_tokens > text_only.usage.prompt_tokens + 5  # "DICOM modality CT, ..." in the prompt
    line = next(x for x in h.audit_lines(live) if x["request_id"] == r.id)
    assert line["inputs"][0]["sha256"] == h.sha256(dcm)


def test_input_audio_wav(client, live, text_only):
    wav = h.wav_bytes()
    r = check_completion(ask(client, [{"type": "text", "text": QUESTION}, h.audio_part(wav)]))
    assert r.usage.prompt_tokens > text_only.usage.prompt_tokens
    line = next(x for x in h.audit_lines(live) if x["request_id"] == r.id)
    assert line["inputs"] == [{"kind": "audio", "sha256": h.sha256(wav), "bytes": len(wav)}]


def test_streaming_chunks(client, live):
    stream = ask(client, [{"type": "text", "text": "Describe."}, h.image_part(h.png_bytes())], stream=True,
                 stream_options={"include_usage": True})
    chunks = list(stream)
    ids = {c.id for c in chunks}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1])
    assert chunks[-1].choices == [] and 1 <= chunks[-1].usage.completion_tokens <= 4  # usage chunk last


def test_streamed_content_arrives_in_order(echo):
    nonce = f"nonce-{uuid.uuid4().hex[:16]}"
    stream = ask(client_for(echo), f"Please repeat {nonce}.", stream=True)
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) == 4 and "".join(pieces) == f"echo {nonce} done"


@pytest.mark.parametrize("stream", [False, True])
def test_the_answer_ends_before_a_stop_sequence(echo, stream):
    nonce = f"nonce-{uuid.uuid4().hex[:16]}"
    r = ask(client_for(echo), f"Please repeat {nonce}.", stream=stream, stop=[" do", "never"])
    text = "".join(c.choices[0].delta.content or "" for c in r if c.choices) if stream else r.choices[0].message.content
    assert text == f"echo {nonce}"  # " do" arrived split over pieces (" done"): held back, then cut


def test_conversation_and_system_prompt_reach_the_model(echo):
    nonce = f"nonce-{uuid.uuid4().hex[:16]}"
    r = client_for(echo).chat.completions.create(model="medany", max_tokens=8, messages=[
        {"role": "system", "content": f"Mention {nonce}."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Go on."},
    ])
    assert r.choices[0].message.content == f"echo {nonce} done"


def test_api_key_is_enforced(serve_assistant):
    key = "test-key-0123456789"
    with h.running(serve_assistant, api_keys=(key,)) as server:
        with pytest.raises(openai.AuthenticationError) as info:
            ask(client_for(server, "wrong-key-0123456789"), "Hello")
        assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
        check_completion(ask(client_for(server, key), "Hello"))


def test_media_descriptions_reach_the_prompt(serve_assistant):
    def media_lines(prompt):
        return [line + "\n" for line in prompt.splitlines() if line.startswith(("Image ", "Audio "))]

    with h.running(h.scripted(serve_assistant, media_lines)) as server:
        r = ask(client_for(server), [{"type": "text", "text": QUESTION},
                                     h.image_part(h.dicom_bytes("CT_small.dcm"), "application/dicom"),
                                     h.audio_part(h.wav_bytes(seconds=0.5))])
    lines = r.choices[0].message.content.splitlines()
    assert lines[0].startswith("Image 1: DICOM modality CT")
    assert lines[1].startswith("Audio 1: recording (0.5 s)")


def test_answers_carry_their_evidence_report_and_a_contradiction_is_revised(serve_assistant):
    replies = iter([["This study is an ultrasound."], ["This study is a CT scan."], ["This study is an MRI."]])
    with h.running(h.scripted(serve_assistant, lambda prompt: next(replies))) as server:
        client = client_for(server)
        dicom = h.image_part(h.dicom_bytes("CT_small.dcm"), "application/dicom")
        r = ask(client, [{"type": "text", "text": "What is it?"}, dicom])
        report = r.model_extra["medany"]
        assert r.choices[0].message.content == "This study is a CT scan."  # the draft said ultrasound
        assert report["revised"] and report["grounding"]["ok"]
        assert report["evidence"][0]["label"] == "Image 1" and report["evidence"][0]["facts"]["modality"] == ["CT"]
        chunks = list(ask(client, [{"type": "text", "text": "What is it?"}, dicom], stream=True))
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    streamed = final.model_extra["medany"]  # streamed pieces cannot be taken back: the report flags them
    assert not streamed["revised"] and streamed["grounding"]["issues"][0]["said"] == "MRI"
