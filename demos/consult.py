"""Consult workspace: recording -> language, timestamped transcript, English translation -> answer -> spoken reply.

The recording (microphone or file) is decoded and transcribed once with the
speech encoder's own Whisper decoder, which also names the language spoken and,
for speech that is not English, translates it to English. The answer is then asked
with that transcript and translation, as the clinician may have corrected them, as
evidence (and with the audio's projected tokens when a trained audio projector is
installed; its transcript is then not read a second time), in the language of the
consultation. The reply can be spoken offline: a neural voice for English
(hibari), espeak-ng for the other languages (:mod:`multimodal.io.voice`).
"""

from __future__ import annotations

import re

import numpy as np

from encoders.base import Transcriber

from .common import (
    LLM_SLOT,
    adopt_upload,
    evidence_markdown,
    gr,
    grounded_answer,
    log_event,
    model_names,
    raise_ui_error,
    status_ok,
    timed,
    timing_note,
    user_error,
)
from .private import PrivateFiles, new_session
from .report import Report
from .settings import DemoSettings

SAMPLE_CONSULT = "sample:consult"
DEFAULT_QUESTION = "Summarise the patient's complaint and suggest what the clinician should ask or check next."
TRANSCRIPT_HEADERS = ["Start", "End", "Text"]


def clock(seconds: float) -> str:
    """``75.25`` -> ``"1:15.2"``."""
    minutes, rest = divmod(max(0.0, float(seconds)), 60.0)
    return f"{int(minutes)}:{rest:04.1f}"


def transcript_text(rows) -> str:
    """Transcript rows -> the spoken words, segment after segment."""
    rows = rows.values.tolist() if hasattr(rows, "values") else (rows or [])
    return " ".join(str(r[2]).strip() for r in rows if len(r) > 2 and str(r[2]).strip())


def consult_evidence(text: str, language: str = "en", english: str = ""):
    """The consultation's transcript (and, for another ``language``, its English translation) as evidence
    (:mod:`multimodal.evidence`)."""
    from encoders.languages import language_name
    from multimodal.evidence import transcript_evidence
    from multimodal.prompt import transcript_summary

    english = english if language != "en" else ""
    line = transcript_summary("recording", text, language_name(language), english)
    return transcript_evidence("Consultation", line, english or text, language)


def language_label(code: str, probability: float | None = None) -> str:
    """``"Spanish (es)"``, with how sure identification was when it was identified: ``"Spanish (es, 97%)"``."""
    from encoders.languages import language_name

    sure = f", {probability:.0%}" if probability is not None else ""
    return f"{language_name(code)} ({code}{sure})"


def language_code(label: str) -> str:
    """The code inside a :func:`language_label` (``"en"`` when there is none)."""
    found = re.search(r"\(([a-z]{2,3})[,)]", label or "")
    return found.group(1) if found else "en"


class ConsultWorkspace:
    """Handlers and UI of the consult tab."""

    def __init__(self, assistant, settings: DemoSettings, private: PrivateFiles | None = None):
        self.assistant = assistant
        self.settings = settings
        self.limits = settings.input_limits()
        self.private = private or PrivateFiles()

    def sample(self):
        """The bundled synthesized consult clip (path for the audio component)."""
        return self.private.sample(SAMPLE_CONSULT)

    def adopt(self, audio, session: str | None = None):
        """A recording moved to the session's private folder under a neutral name (its new path)."""
        return adopt_upload(self.private, audio, session, "consult.adopt")

    def transcribe(self, audio):
        """Recording path -> (transcript rows, status, English translation, language heard)."""
        if not audio:
            raise user_error("Record or upload a consultation first.", "No recording")
        from multimodal.io import load_audio

        speech = self.assistant.speech
        if not isinstance(speech, Transcriber):
            raise user_error("This MedAny stack has no speech model.", "No speech model")
        try:
            with timed("consult.transcribe") as facts:
                clip = load_audio(audio, limits=self.limits)
                heard = speech.transcribe(clip, language=self.assistant.config.speech_language, timestamps=True)
                facts.update(audio_s=clip.duration_s, segments=len(heard.segments), language=heard.language)
        except Exception as exc:
            raise_ui_error("consult.transcribe", exc)
        rows = [[clock(s), clock(e), text] for s, e, text in heard.segments if text.strip()]
        status = status_ok(f"{clip.duration_s:.1f} s in {heard.language_name} transcribed into {len(rows)} "
                           "segment(s). Edit the text if needed.")
        return (rows or [["0:00.0", clock(clip.duration_s), ""]], status, heard.english,
                language_label(heard.language, heard.language_probability))

    def answer(self, audio, transcript, question, translation: str = "", language: str = ""):
        """Stream the answer (in the consultation's language): yields (answer markdown, note, evidence)."""
        question = (question or "").strip() or DEFAULT_QUESTION
        text = transcript_text(transcript)
        if not text and not audio:
            raise user_error("Record or upload a consultation, then transcribe it.", "No consultation")
        attach = audio and self.assistant.projects("audio")
        answer = ""
        yield "", "Thinking…", ""
        try:
            with timed("consult.answer", audios=int(bool(attach))):
                from multimodal.io import load_audio

                audios = [load_audio(audio, limits=self.limits)] if attach else []
                context = [consult_evidence(text, language_code(language), (translation or "").strip())] if text else []
                for answer in grounded_answer(self.assistant, question, audios=audios, context=context):
                    yield answer, "Answering…", ""
        except Exception as exc:
            raise_ui_error("consult.answer", exc)
        yield (answer.strip() or "(no answer was generated)", timing_note(self.assistant),
               evidence_markdown(self.assistant.last_answer))

    def speak(self, answer, enabled, language: str = ""):
        """The answer as speech in the consultation's language (sample rate, int16 samples), or None when
        switched off."""
        if not enabled or not (answer or "").strip():
            return None
        from multimodal.io.tts import MAX_TEXT_CHARS
        from multimodal.io.voice import choose_voice, speak

        code = language_code(language)
        try:
            with timed("consult.speak", language=code) as facts:
                facts.update(voice=choose_voice(code).id)
                clip = speak(answer.strip()[:MAX_TEXT_CHARS], code)
        except Exception as exc:
            raise_ui_error("consult.speak", exc)
        pcm = (np.clip(clip.samples, -1.0, 1.0) * 32767.0).astype(np.int16)
        log_event("consult.spoken", seconds=clip.duration_s)
        return clip.sample_rate, pcm

    def note(self, transcript, translation: str = "", language: str = "", session: str | None = None):
        """The consultation's SOAP note with coded findings: (Markdown, [note JSON, FHIR bundle JSON] files)."""
        import json

        from multimodal.consult_note import write_note

        text = transcript_text(transcript)
        if not text:
            raise user_error("Transcribe a consultation first.", "No transcript")
        code = language_code(language)
        try:
            with timed("consult.note", language=code) as facts:
                note = write_note(self.assistant, text, code, (translation or "").strip() if code != "en" else "")
                facts.update(symptoms=len(note.symptoms), medications=len(note.medications))
                files = [self.private.write_text(session, "consult-note.json",
                                                 json.dumps(note.as_dict(), indent=1, ensure_ascii=False)),
                         self.private.write_text(session, "consult-note-fhir.json",
                                                 json.dumps(note.fhir_bundle(), indent=1, ensure_ascii=False))]
        except Exception as exc:
            raise_ui_error("consult.note", exc)
        return note.to_markdown(), [str(f) for f in files]

    def export(self, transcript, question, answer, session: str | None = None, translation: str = "",
               language: str = ""):
        rows = transcript.values.tolist() if hasattr(transcript, "values") else (transcript or [])
        tables = {"Transcript": {"headers": TRANSCRIPT_HEADERS, "rows": rows}}
        if (translation or "").strip():
            tables["English translation"] = {"headers": ["Language", "Translation"],
                                             "rows": [[language, translation.strip()]]}
        report = Report(workspace="consult", models=model_names(self.assistant), tables=tables,
                        turns=[{"role": "user", "content": question or DEFAULT_QUESTION},
                               {"role": "assistant", "content": answer or ""}]).cite(self.assistant.knowledge)
        try:
            return report.export(self.private, session)
        except Exception as exc:  # never a traceback that could quote the conversation
            raise_ui_error("consult.export", exc)

    def render(self) -> None:
        g = gr()
        session = g.State(new_session, delete_callback=self.private.end_session)
        with g.Row(equal_height=False):
            with g.Column(scale=5, min_width=360):
                audio = g.Audio(label="Consultation (record or upload)", sources=["microphone", "upload"],
                                type="filepath", elem_id="consult-audio")
                with g.Row():
                    sample = g.Button("Use sample consult", size="sm", elem_id="consult-sample")
                    transcribe = g.Button("Transcribe", variant="primary", size="sm", elem_id="consult-transcribe")
                status = g.HTML(elem_id="consult-status")
                language = g.Textbox(label="Language heard", interactive=False, elem_id="consult-language")
                transcript = g.Dataframe(headers=TRANSCRIPT_HEADERS, datatype=["str", "str", "str"], type="array",
                                         interactive=True, wrap=True, column_count=3, label="Transcript",
                                         column_widths=["70px", "70px", "auto"], elem_id="consult-transcript")
                translation = g.Textbox(label="English translation (Whisper; for speech that is not English)",
                                        lines=2, interactive=True, elem_id="consult-translation")
            with g.Column(scale=6, min_width=420):
                question = g.Textbox(label="Question about the consultation", value=DEFAULT_QUESTION, lines=2)
                with g.Row():
                    speak = g.Checkbox(label="Speak the answer (offline voice)", value=False)
                    ask = g.Button("Answer", variant="primary", elem_id="consult-answer")
                    write = g.Button("Write SOAP note", variant="secondary", elem_id="consult-note-button")
                    export = g.Button("Export report", variant="secondary")
                answer = g.Markdown(elem_id="consult-answer-text", elem_classes=["medany-answer"])
                note = g.Markdown(elem_classes=["medany-note"])
                evidence = g.Markdown(elem_classes=["medany-evidence"], elem_id="consult-evidence")
                spoken = g.Audio(label="Spoken answer", type="numpy", interactive=False, elem_id="consult-spoken")
                soap = g.Markdown(elem_id="consult-note")
                files = g.File(label="Report (Markdown and JSON)", file_count="multiple", interactive=False)

        heard = [transcript, status, translation, language]
        sample.click(self.sample, None, [audio], api_name="consult_sample") \
            .then(self.transcribe, [audio], heard, concurrency_id=LLM_SLOT, api_visibility="undocumented")
        for trigger in (audio.upload, audio.stop_recording):  # first into the private folder, neutrally named
            trigger(self.adopt, [audio, session], [audio], api_visibility="undocumented") \
                .then(self.transcribe, [audio], heard, concurrency_id=LLM_SLOT, api_visibility="undocumented")
        transcribe.click(self.transcribe, [audio], heard, api_name="consult_transcribe", concurrency_id=LLM_SLOT)
        ask.click(self.answer, [audio, transcript, question, translation, language], [answer, note, evidence],
                  api_name="consult_answer", concurrency_id=LLM_SLOT) \
            .success(self.speak, [answer, speak, language], [spoken], api_name="consult_speak")
        write.click(self.note, [transcript, translation, language, session], [soap, files], api_name="consult_note",
                    concurrency_id=LLM_SLOT)
        export.click(self.export, [transcript, question, answer, session, translation, language], [files],
                     api_name="consult_export")
