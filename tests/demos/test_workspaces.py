"""Workspace handlers decode uploads with the demo's own limits (not the library defaults) before asking."""

from types import SimpleNamespace

import numpy as np
import pytest

from demos.clinician import ClinicianWorkspace
from demos.consult import ConsultWorkspace
from demos.dietitian import DietitianWorkspace
from demos.settings import DemoSettings
from multimodal.io.types import AudioClip, MedicalImage

CAP = 64 * 1024  # a demo server that accepts uploads up to 64 KiB


class RecordingAssistant:
    """Stands in for ``Assistant``: records what each request carried, answers one word."""

    def __init__(self):
        self.last_timings = SimpleNamespace(new_tokens=1, total_s=0.1, first_token_s=0.05, tokens_per_s=0.0)
        self.requests = []

    def projects(self, kind):
        return kind in ("image", "audio")

    def stream(self, question, images=(), audios=(), context=()):
        self.requests.append((question, list(images), list(audios)))
        self.last_answer = SimpleNamespace(grounding=SimpleNamespace(ok=True, checked=0), evidence=list(context),
                                           revised=False)
        yield "ok"


def _drain(gen):
    return list(gen)


@pytest.fixture
def big_png(tmp_path):
    from PIL import Image

    path = tmp_path / "big.png"
    Image.fromarray((np.random.default_rng(0).random((300, 300, 3)) * 255).astype(np.uint8)).save(path)
    assert path.stat().st_size > CAP
    return str(path)


def test_clinician_chat_decodes_uploads_with_the_demo_limit_but_trusts_bundled_samples(big_png):
    assistant = RecordingAssistant()
    ws = ClinicianWorkspace(assistant, DemoSettings(max_file_size=CAP))
    with pytest.raises(Exception, match="too large"):
        _drain(ws.chat("what is it?", [], [{"path": big_png, "bundled": False}]))
    assert assistant.requests == []
    _drain(ws.chat("what is it?", [], [{"path": big_png, "bundled": True}]))
    (_, images, _), = assistant.requests
    assert len(images) == 1 and isinstance(images[0], MedicalImage)


def test_dietitian_advice_decodes_the_photo_with_the_demo_limit(big_png):
    assistant = RecordingAssistant()
    ws = DietitianWorkspace(assistant, DemoSettings(max_file_size=CAP))
    table = [["banana", 120]]
    with pytest.raises(Exception, match="too large"):
        _drain(ws.advise(table, "adult", big_png))
    _drain(DietitianWorkspace(assistant, DemoSettings()).advise(table, "adult", big_png))
    (_, images, _), = assistant.requests
    assert isinstance(images[0], MedicalImage)


def test_consult_answer_decodes_the_recording_with_the_demo_limit(tmp_path):
    from multimodal.io.tts import write_wav

    wav = tmp_path / "long.wav"
    t = np.arange(16000 * 3) / 16000
    write_wav(AudioClip((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)), wav)  # ~96 KB
    assistant = RecordingAssistant()
    with pytest.raises(Exception, match="too large"):
        _drain(ConsultWorkspace(assistant, DemoSettings(max_file_size=CAP)).answer(str(wav), None, "q"))
    _drain(ConsultWorkspace(assistant, DemoSettings()).answer(str(wav), None, "q"))
    (_, _, audios), = assistant.requests
    assert isinstance(audios[0], AudioClip)


@pytest.mark.slow
def test_a_german_consult_is_heard_translated_answered_and_spoken_in_german(tmp_path):
    """Issue 16's "done when": the language, the transcript, its translation, an answer asked in German, a
    German voice."""
    from demos.common import gr  # noqa: F401 - the workspace's UI helpers need gradio
    from multimodal.config import StackConfig
    from multimodal.io.tts import synthesize, write_wav
    from multimodal.pipeline import Assistant
    from tests.scripted import scripted

    said = "Ich habe seit drei Tagen Kopfschmerzen und leichtes Fieber."
    wav = write_wav(synthesize(said, voice="de"), tmp_path / "konsultation.wav")
    base = Assistant.load(StackConfig(llm="tiny-random", vision="", speech="medany-whisper-base", knowledge="none"))
    prompts = []
    assistant = scripted(base, lambda prompt: prompts.append(prompt) or ["Ruhen ", "Sie ", "sich ", "aus."])
    consult = ConsultWorkspace(assistant, DemoSettings())
    rows, status, translation, language = consult.transcribe(str(wav))
    assert language.startswith("German (de, ") and "in German transcribed" in status
    assert "Tagen" in " ".join(r[2] for r in rows) and "days" in translation
    *_, (answer, _, evidence) = list(consult.answer(str(wav), rows, "Was soll ich tun?", translation, language))
    assert answer == "Ruhen Sie sich aus." and "Consultation" in evidence
    assert "spoken in German" in prompts[-1] and "English translation" in prompts[-1]
    assert "Question: Was soll ich tun?\nAnswer in German." in prompts[-1]
    rate, pcm = consult.speak(answer, True, language)
    assert rate == 16_000 and len(pcm) > rate // 2  # espeak-ng's German voice says the four words


@pytest.fixture(scope="module")
def explaining_assistant(tmp_path_factory):
    """The tiny stack with an image projector, answering one fixed sentence (a random LLM writes nothing)."""
    from encoders import create_encoder
    from multimodal.config import StackConfig
    from multimodal.pipeline import Assistant
    from projectors import create_projector, save_projector
    from tests.scripted import scripted

    img = create_projector("mlp2x_gelu", create_encoder("tiny_vit").out_dim, 64)
    path = save_projector(img, tmp_path_factory.mktemp("proj") / "img", encoder="tiny_vit", llm="tiny-random")
    base = Assistant.load(StackConfig(llm="tiny-random", vision="tiny_vit", speech="", knowledge="none",
                                      max_new_tokens=16, image_projector=str(path)))
    return scripted(base, lambda prompt: ["The film is ", "a CR of ", "the chest."])


def test_why_explains_the_last_answer_beside_it_and_in_the_report(explaining_assistant, tmp_path):
    import base64
    import io
    import json
    from pathlib import Path

    from PIL import Image

    from demos.common import gr  # noqa: F401 - the workspace's UI helpers need gradio
    from demos.private import PrivateFiles

    ws = ClinicianWorkspace(explaining_assistant, DemoSettings(), PrivateFiles(tmp_path))
    study = ws.add_sample([])[0]
    *_, (history, _, _, _, _, answer) = ws.chat("What does the film show?", [], study)
    assert answer.text == "The film is a CR of the chest."
    off = next(ws.why(False, answer, study[0]["label"], study))
    assert off[0]["visible"] is False
    first = next(ws.why(True, None, study[0]["label"], study))
    assert "Ask a question first" in first[4]
    steps = list(ws.why(True, answer, study[0]["label"], study))
    panel, overlay, cam, rows, note, explained = steps[-1]
    assert panel["visible"] and cam["visible"] is False  # a DICOM: read by its header, no classifier line
    assert overlay.dtype == np.uint8 and overlay.ndim == 3
    assert {r[0] for r in rows} >= {"Image 1 DICOM modality", "Image 1 DICOM body part", "Question"}
    assert "not the disease" in note and "LLM passes" in note
    png = Image.open(io.BytesIO(base64.b64decode(explained["png"]["answer_map"])))
    assert png.size == (overlay.shape[1], overlay.shape[0])
    md, js = ws.export(history, study, "session-1", explained)
    assert "## Why (image 1)" in Path(md).read_text() and "DICOM body part" in Path(md).read_text()
    assert json.loads(Path(js).read_text())["explanations"][0]["png"]["answer_map"] == explained["png"]["answer_map"]
