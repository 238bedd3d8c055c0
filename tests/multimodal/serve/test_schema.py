"""Request parsing without a server: conversation flattening and accepted shapes."""

from __future__ import annotations

import pytest

from multimodal.serve.errors import ApiError
from multimodal.serve.schema import flatten, parse_chat_request, parse_json
from multimodal.serve.settings import ServeSettings
from tests.multimodal.serve import serve_helpers as h

SETTINGS = ServeSettings()


def parse(**body):
    return parse_chat_request({"model": "medany", **body}, SETTINGS)


def test_single_user_message_is_the_question():
    r = parse(messages=[{"role": "user", "content": "Why?"}])
    assert r.question == "Why?" and r.media == [] and r.stream is False and r.max_tokens is None


def test_conversation_is_flattened_in_order():
    assert flatten([("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello."), ("user", "And?")]) == \
        "Instructions: Be brief.\nUser: Hi\nAssistant: Hello.\nUser: And?"


def test_parts_and_media_in_reading_order():
    png, wav = h.png_bytes(), h.wav_bytes()
    r = parse(messages=[{"role": "user", "content": [
        {"type": "text", "text": "One"}, {"type": "image_url", "image_url": h.data_url(png, "image/png")},
        h.audio_part(wav), {"type": "text", "text": "Two"}]}],
        max_completion_tokens=7, temperature=0, stream=True, stream_options={"include_usage": True})
    assert r.question == "One\nTwo"
    assert [(m.kind, m.data) for m in r.media] == [("image", png), ("audio", wav)]
    assert r.media[1].param == "messages[0].content[2].input_audio.data"
    assert (r.max_tokens, r.temperature, r.stream, r.include_usage) == (7, 0, True, True)


def test_assistant_content_may_be_null_and_unknown_sampling_options_are_ignored():
    r = parse(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": None},
                        {"role": "user", "content": "b"}], top_p=0.9, seed=1, user="x", frequency_penalty=0)
    assert r.question == "User: a\nUser: b"


@pytest.mark.parametrize("mime", ["image/png", "image/jpeg", "image/webp", "application/dicom", "IMAGE/PNG"])
def test_accepted_image_types(mime):
    assert parse(messages=[{"role": "user", "content": [h.image_part(b"\x00\x01", mime)]}]).media[0].data == b"\x00\x01"


def test_media_only_in_user_messages():
    with pytest.raises(ApiError) as info:
        parse(messages=[{"role": "system", "content": [h.image_part(b"x")]}, {"role": "user", "content": "hi"}])
    assert info.value.status == 400 and info.value.param == "messages[0].content[0]"


def test_parse_json_rejects_non_objects():
    assert parse_json(b'{"a": 1}') == {"a": 1}
    for raw in (b"", b"[]", b"\x80"):
        with pytest.raises(ApiError):
            parse_json(raw)
