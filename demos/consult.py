"""Consult workspace: recording -> timestamped transcript -> answer -> optional spoken reply.

The recording (microphone or file) is decoded and transcribed once with the
speech encoder's own Whisper decoder; the answer is then asked with that
transcript, as the clinician may have corrected it, as evidence (and with the
audio's projected tokens when a trained audio projector is installed; its
transcript is then not read a second time). The reply can be spoken offline
with espeak-ng.
"""

from __future__ import annotations

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


def consult_evidence(text: str):
    """The consultation's transcript as evidence (:mod:`multimodal.evidence`)."""
    from multimodal.evidence import transcript_evidence
    from multimodal.prompt import transcript_summary

    return transcript_evidence("Consultation", transcript_summary("recording", text), text)


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
        """Recording path -> (transcript rows, status)."""
        if not audio:
            raise user_error("Record or upload a consultation first.", "No recording")
        from multimodal.io import load_audio

        speech = self.assistant.speech
        if not isinstance(speech, Transcriber):
            raise user_error("This MedAny stack has no speech model.", "No speech model")
        try:
            with timed("consult.transcribe") as facts:
                clip = load_audio(audio, limits=self.limits)
                segments = speech.transcribe_segments(clip)
                facts.update(audio_s=clip.duration_s, segments=len(segments))
        except Exception as exc:
            raise_ui_error("consult.transcribe", exc)
        rows = [[clock(s), clock(e), text] for s, e, text in segments if text.strip()]
        status = status_ok(f"{clip.duration_s:.1f} s transcribed into {len(rows)} segment(s). Edit the text if needed.")
        return rows or [["0:00.0", clock(clip.duration_s), ""]], status

    def answer(self, audio, transcript, question):
        """Stream the answer: yields (answer markdown, note, evidence)."""
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
                context = [consult_evidence(text)] if text else []
                for answer in grounded_answer(self.assistant, question, audios=audios, context=context):
                    yield answer, "Answering…", ""
        except Exception as exc:
            raise_ui_error("consult.answer", exc)
        yield (answer.strip() or "(no answer was generated)", timing_note(self.assistant),
               evidence_markdown(self.assistant.last_answer))

    def speak(self, answer, enabled):
        """The answer as speech (sample rate, int16 samples), or None when switched off."""
        if not enabled or not (answer or "").strip():
            return None
        from multimodal.io.tts import MAX_TEXT_CHARS, synthesize

        try:
            with timed("consult.speak"):
                clip = synthesize(answer.strip()[:MAX_TEXT_CHARS])
        except Exception as exc:
            raise_ui_error("consult.speak", exc)
        pcm = (np.clip(clip.samples, -1.0, 1.0) * 32767.0).astype(np.int16)
        log_event("consult.spoken", seconds=clip.duration_s)
        return clip.sample_rate, pcm

    def export(self, transcript, question, answer, session: str | None = None):
        rows = transcript.values.tolist() if hasattr(transcript, "values") else (transcript or [])
        report = Report(workspace="consult", models=model_names(self.assistant),
                        tables={"Transcript": {"headers": TRANSCRIPT_HEADERS, "rows": rows}},
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
                transcript = g.Dataframe(headers=TRANSCRIPT_HEADERS, datatype=["str", "str", "str"], type="array",
                                         interactive=True, wrap=True, column_count=3, label="Transcript",
                                         column_widths=["70px", "70px", "auto"], elem_id="consult-transcript")
            with g.Column(scale=6, min_width=420):
                question = g.Textbox(label="Question about the consultation", value=DEFAULT_QUESTION, lines=2)
                with g.Row():
                    speak = g.Checkbox(label="Speak the answer (offline, espeak-ng)", value=False)
                    ask = g.Button("Answer", variant="primary", elem_id="consult-answer")
                    export = g.Button("Export report", variant="secondary")
                answer = g.Markdown(elem_id="consult-answer-text", elem_classes=["medany-answer"])
                note = g.Markdown(elem_classes=["medany-note"])
                evidence = g.Markdown(elem_classes=["medany-evidence"], elem_id="consult-evidence")
                spoken = g.Audio(label="Spoken answer", type="numpy", interactive=False, elem_id="consult-spoken")
                files = g.File(label="Report (Markdown and JSON)", file_count="multiple", interactive=False)

        sample.click(self.sample, None, [audio], api_name="consult_sample") \
            .then(self.transcribe, [audio], [transcript, status], concurrency_id=LLM_SLOT,
                  api_visibility="undocumented")
        for trigger in (audio.upload, audio.stop_recording):  # first into the private folder, neutrally named
            trigger(self.adopt, [audio, session], [audio], api_visibility="undocumented") \
                .then(self.transcribe, [audio], [transcript, status], concurrency_id=LLM_SLOT,
                      api_visibility="undocumented")
        transcribe.click(self.transcribe, [audio], [transcript, status], api_name="consult_transcribe",
                         concurrency_id=LLM_SLOT)
        ask.click(self.answer, [audio, transcript, question], [answer, note, evidence], api_name="consult_answer",
                  concurrency_id=LLM_SLOT) \
            .success(self.speak, [answer, speak], [spoken], api_name="consult_speak")
        export.click(self.export, [transcript, question, answer, session], [files], api_name="consult_export")
