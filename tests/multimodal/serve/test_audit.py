"""Audit lines: one per chat request, hashes and outcomes only, never text, names or patient data."""

from __future__ import annotations

import json
import uuid

import httpx

from multimodal.serve.audit import AuditLog, stack_identity
from multimodal.serve.schema import MediaInput
from tests.multimodal.serve import serve_helpers as h


def test_identity_carries_projector_hashes():
    info = {"llm": type("LLM", (), {"name": "tiny-random"})(),
            "image": {"name": "tiny_vit", "projector": {"name": "mlp2x_gelu", "sha256": "ab" * 32}},
            "audio": {"name": "tiny_whisper"}}
    ident = stack_identity(info, "medany")
    assert ident == {"model": "medany", "llm": "tiny-random",
                     "encoders": {"image": "tiny_vit", "audio": "tiny_whisper"}, "projectors": {"image": "ab" * 32}}


def test_record_writes_one_json_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog({"model": "m"}, str(path))
    media = h.png_bytes()
    item = MediaInput("image", media, "messages[0].content[1].image_url").digest()
    assert not hasattr(item, "data") and item.sha256 == h.sha256(media)
    log.record(request_id="r1", status=200, latency_s=0.5, inputs=[item], prompt_tokens=3, completion_tokens=2)
    log.record(request_id="r2", status=413, latency_s=0.01, code="too_large")
    first, second = (json.loads(x) for x in path.read_text().splitlines())
    assert first["inputs"] == [{"kind": "image", "sha256": h.sha256(media), "bytes": len(media)}]
    assert first["model"] == "m" and first["status"] == 200 and first["time"].endswith("+00:00")
    assert second["code"] == "too_large" and second["inputs"] == []


def test_live_lines_hold_no_text_names_or_patient_data(live):
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    patient = str(dcmread(path).PatientName)
    question = f"Is anything wrong with Mr Secret-{uuid.uuid4().hex[:8]}?"
    data = h.dicom_bytes("CT_small.dcm")
    with httpx.Client(base_url=live.url, timeout=30) as client:
        r = client.post("/v1/chat/completions", json=h.chat_body([{"type": "text", "text": question},
                                                                  h.image_part(data, "application/dicom")]))
        bad = client.post("/v1/chat/completions", json=h.chat_body([{"type": "text", "text": question},
                                                                    h.image_part(data[:3000], "application/dicom")]))
    assert r.status_code == 200 and bad.status_code == 422
    text = live.audit_path.read_text()
    lines = {x["request_id"]: x for x in h.audit_lines(live)}
    ok, failed = lines[r.json()["id"]], lines[bad.headers["x-request-id"]]
    assert ok["inputs"][0]["sha256"] == h.sha256(data) and ok["status"] == 200 and ok["latency_s"] > 0
    assert failed["status"] == 422 and failed["code"] == "corrupt_dicom"
    answer = r.json()["choices"][0]["message"]["content"]
    for secret in (question, "Secret", patient, "CT_small", ".dcm", answer or "§"):
        assert secret not in text


def test_request_media_bytes_are_dropped_before_the_answer_is_generated(live, serve_assistant, monkeypatch):
    import multimodal.serve.app as app_module

    chats, seen = [], []
    real = app_module.chat_work

    def recording_chat_work(assistant, chat, *args):
        chats.append(chat)
        return real(assistant, chat, *args)

    real_respond = serve_assistant.respond

    def respond(question, images=(), audios=(), **kw):  # the worker has decoded the media by now
        seen.append((list(chats[-1].media), len(images)))
        return real_respond(question, images, audios, **kw)

    monkeypatch.setattr(app_module, "chat_work", recording_chat_work)
    monkeypatch.setattr(serve_assistant, "respond", respond)
    data = h.png_bytes()
    with httpx.Client(base_url=live.url, timeout=30) as client:
        r = client.post("/v1/chat/completions", json=h.chat_body([{"type": "text", "text": "what?"},
                                                                  h.image_part(data, "image/png")]))
    assert r.status_code == 200
    assert seen == [([], 1)]  # decoded image handed on, encoded bytes released
    line = next(x for x in h.audit_lines(live) if x["request_id"] == r.json()["id"])
    assert line["inputs"] == [{"kind": "image", "sha256": h.sha256(data), "bytes": len(data)}]
