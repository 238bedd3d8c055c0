"""Every workspace through gradio_client against the app served on 127.0.0.1 (tiny stack)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402

QUESTION = "Patient Jane Example asks: what does this film show?"


@pytest.fixture(scope="module")
def film() -> str:
    from multimodal.samples import resolve_sample

    return str(resolve_sample("sample:RG1_UNCR.dcm"))


def _final(job):
    for _ in job:
        pass
    return job.outputs()


def test_clinician_sample_chat_and_export(client, caplog):
    selector, viewer, preset, center, width, meta, status = client.predict(api_name="/clinician_sample")
    assert selector["value"] == "Image 1 · CR CHEST PA"
    assert Path(viewer).suffix == ".png" and preset == "Default"
    assert meta["modality"] == "CR" and meta["rows"] == 1955 and "medany-ok" in status
    assert center["interactive"] and center["value"] == meta["window"]["center"]
    assert not any("name" in key.lower() or "id" == key.lower() for key in meta)

    caplog.set_level(logging.INFO, logger="medany.demo")
    outputs = _final(client.submit(QUESTION, api_name="/clinician_chat"))  # the history is server-side state
    assert len(outputs) >= 3, "the answer should arrive in several updates"
    history, box, note, evidence = outputs[-1]
    assert history[0]["role"] == "user" and history[-1]["role"] == "assistant" and box == ""
    assert "tokens" in note
    assert "**Evidence**" in evidence and "DICOM modality CR" in evidence and "body part CHEST" in evidence
    assert "clinician.chat" in caplog.text and "Jane" not in caplog.text and "film show" not in caplog.text

    md_path, json_path = client.predict(api_name="/clinician_export")
    md = Path(md_path).read_text()
    assert "# MedAny clinician report" in md and "Research use only" in md and "CR" in md
    data = json.loads(Path(json_path).read_text())
    assert data["images"][0]["body_part"] == "CHEST" and data["turns"][0]["content"] == QUESTION


def test_clinician_generate_report_serves_the_four_files(client):
    client.predict(api_name="/clinician_sample")
    files, markdown = client.predict("Cough for three days", api_name="/clinician_report")
    assert sorted(Path(f).name for f in files) == ["report-fhir.json", "report-sr.dcm", "report.json", "report.md"]
    assert markdown.startswith("# MedAny imaging report") and "Image 1: body part examined CHEST." in markdown


def test_clinician_window_presets(client):
    client.predict(api_name="/clinician_sample")
    label = "Image 1 · CR CHEST PA"
    viewer, preset, center, width, meta = client.predict(label, "Auto", 0, 1, api_name="/clinician_window")
    assert meta["window"]["source"] == "auto" and preset == "Auto"
    viewer, preset, center, width, meta = client.predict(label, "Custom", 12000, 8000,
                                                         api_name="/clinician_window")
    assert meta["window"]["source"] == "manual" and meta["window"]["center"] == 12000
    assert center["value"] == 12000 and width["value"] == 8000


def test_clinician_corrupt_upload_shows_clear_error(client, film, tmp_path):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(Path(film).read_bytes()[:4000])  # header without its pixels
    selector, viewer, *_, meta, status = client.predict([handle_file(str(broken))], api_name="/clinician_add")
    assert "medany-error" in status and "damaged" in status and "Upload 1 was not added" in status
    assert "broken.dcm" not in status and viewer is None and selector["choices"] == []


def test_clinician_not_an_image(client, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an image at all\n" * 10)
    *_, status = client.predict([handle_file(str(text))], api_name="/clinician_add")
    assert "medany-error" in status and "not a recognised format" in status


def test_oversize_upload_is_refused(client, demo_server, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(demo_server[1].max_file_size + 1024))
    with pytest.raises(Exception) as info:
        client.predict([handle_file(str(big))], api_name="/clinician_add")
    assert "413" in str(info.value) or "size" in str(info.value).lower()


def test_dietitian_totals_recognise_advise_export(client, tmp_path):
    rows, unknown = client.predict({"headers": ["Food", "Grams"], "data": [["banana", 120], ["broccoli", 91],
                                                                           ["guacamole", 100]]},
                                   api_name="/dietitian_totals")
    total = rows["data"][-1]
    assert total[0] == "Total" and total[1] == 211  # guacamole is not in the table: not counted
    assert total[2] == f"{89 * 1.2 + 34 * 0.91:.0f}"
    assert "guacamole" in unknown

    from PIL import Image

    photo = tmp_path / "meal.jpg"
    Image.fromarray((np.random.default_rng(0).random((64, 80, 3)) * 255).astype(np.uint8)).save(photo)
    labels, portions, status = client.predict(handle_file(str(photo)), api_name="/dietitian_recognize")
    assert ("medany-ok" in status) or ("Add the foods by hand" in status)  # tiny_vit has no ImageNet head

    table = {"headers": ["Food", "Grams"], "data": [["banana", 120]]}
    outputs = _final(client.submit(table, "low sodium diet", None, api_name="/dietitian_advise"))
    advice, evidence = outputs[-1]
    assert advice and len(outputs) >= 2
    assert "**Nutrient table** (nutrients)" in evidence and "banana 120 g" in evidence and "low sodium diet" in evidence
    md_path, json_path = client.predict(table, "low sodium diet", advice, api_name="/dietitian_export")
    data = json.loads(Path(json_path).read_text())
    assert data["tables"]["Meal nutrients (USDA FoodData Central)"]["rows"][0][0] == "banana"


def test_dietitian_sample_photo_is_served(client):
    from multimodal.paths import file_sha256
    from multimodal.samples import resolve_sample

    photo = client.predict(api_name="/dietitian_sample")
    assert file_sha256(photo) == file_sha256(resolve_sample("sample:fruits.jpg"))


def test_dietitian_bad_portion_is_an_error(client):
    with pytest.raises(Exception, match="zero or more grams"):
        client.predict({"headers": ["Food", "Grams"], "data": [["banana", -5]]}, api_name="/dietitian_totals")


def test_consult_transcribe_answer_speak_export(client):
    audio = client.predict(api_name="/consult_sample")
    transcript, status, translation, language = client.predict(handle_file(audio), api_name="/consult_transcribe")
    assert transcript["headers"] == ["Start", "End", "Text"] and len(transcript["data"]) >= 1
    assert transcript["data"][0][0].startswith("0:") and "in English transcribed" in status
    assert language == "English (en)" and translation == ""  # the tiny stack's Whisper is English-only

    outputs = _final(client.submit(handle_file(audio), transcript, "Summarise the complaint.", translation, language,
                                   api_name="/consult_answer"))
    answer, note, evidence = outputs[-1]
    assert answer and len(outputs) >= 2
    assert "**Consultation** (transcript)" in evidence

    spoken = client.predict("Please rest and drink fluids.", True, language, api_name="/consult_speak")
    assert Path(spoken).stat().st_size > 8000  # a second or more of speech
    assert client.predict("anything", False, language, api_name="/consult_speak") is None

    note, files = client.predict(transcript, translation, language, api_name="/consult_note")
    assert note.startswith("**Subjective.**") and "**Plan.**" in note
    assert [Path(f).name for f in files] == ["consult-note.json", "consult-note-fhir.json"]
    assert json.loads(Path(files[0]).read_text())["subjective"]
    assert json.loads(Path(files[1]).read_text())["resourceType"] == "Bundle"

    md_path, _ = client.predict(transcript, "Summarise the complaint.", answer, "", language,
                                api_name="/consult_export")
    assert "## Transcript" in Path(md_path).read_text()


def test_consult_corrupt_audio_is_an_error(client, tmp_path):
    bad = tmp_path / "clip.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40))
    with pytest.raises(Exception) as info:
        client.predict(handle_file(str(bad)), api_name="/consult_transcribe")
    assert "clip.wav" not in str(info.value)
