"""Clinician workspace: a study of images, a windowed viewer, metadata, and a grounded chat.

A study is a list of uploaded images (DICOM, PNG, JPEG …), each decoded and
de-identified on arrival; files that cannot be read are refused with the
loader's message in the page, the rest of the study is kept. The viewer
re-windows DICOM from the stored values (presets or centre/width sliders);
questions are answered with every image of the study attached. "Generate report"
writes the study's structured report (:mod:`multimodal.report`): Markdown, JSON, a
DICOM SR and a FHIR DiagnosticReport, for download.
"""

from __future__ import annotations

from functools import lru_cache

from multimodal.io import load_image
from multimodal.io.deid import UidMapper
from multimodal.io.limits import DEFAULT_LIMITS, InputLimits
from multimodal.io.windows import PRESETS

from .common import (
    LLM_SLOT,
    error_message,
    evidence_markdown,
    gr,
    grounded_answer,
    log_event,
    log_failure,
    model_names,
    raise_ui_error,
    status_error,
    status_ok,
    timed,
    timing_note,
    to_display,
    user_error,
)
from .private import PrivateFiles, new_session
from .report import Report, history_to_turns
from .settings import DemoSettings

SAMPLE_FILM = "sample:RG1_UNCR.dcm"
FACT_HEADERS = ["Prompt part", "Value", "Log-probability lost"]
MAX_STUDY_IMAGES = 12
WINDOW_CHOICES = ["Default", "Auto"] + [name.replace("_", " ").capitalize() for name in PRESETS] + ["Custom"]
EXAMPLE_QUESTIONS = [
    "Describe this chest film and list what a radiologist would check.",
    "What should the patient ask their doctor about this study?",
]


def window_spec(preset: str | None, center: float | None, width: float | None):
    """UI choice -> ``load_image(window=...)``: None (file's own), ``"auto"``, a preset, or (c, w)."""
    preset = (preset or "Default").strip()
    if preset == "Default":
        return None
    if preset == "Auto":
        return "auto"
    if preset == "Custom":
        if center is None or width is None:
            return None
        return (float(center), max(float(width), 1.0))
    return preset.lower().replace(" ", "_")


@lru_cache(maxsize=24)
def _render(path: str, window, limits: InputLimits):
    """Decode ``path`` with ``window`` -> (display uint8 [h, w, 3], de-identified meta, kind)."""
    image = load_image(path, window=window, limits=limits)
    return to_display(image.pixels), image.meta, image.kind


def slider_ranges(meta: dict) -> tuple[tuple[float, float], tuple[float, float]]:
    """(center range, width range) in modality units for the window sliders."""
    if (meta.get("modality") or "").upper() == "CT":
        return (-1200.0, 3000.0), (1.0, 4000.0)
    top = float(2 ** int(meta.get("bits_stored") or 16))
    return (0.0, top), (1.0, top)


def why_note(explanation) -> str:
    """What each view of an explanation is and what it took (numbers only)."""
    parts = []
    if explanation.classifier is not None:
        parts.append(f"{explanation.classifier.title}")
    if explanation.answer_map is not None:
        parts.append(explanation.answer_map.title)
    if explanation.facts:
        parts.append(f"{len(explanation.facts)} prompt facts removed one at a time")
    seconds = sum(explanation.seconds.values())
    return " · ".join(parts + [f"{explanation.passes} LLM passes in {seconds:.1f} s"])


def _label(index: int, meta: dict, kind: str) -> str:
    if kind == "dicom":
        what = " ".join(str(meta[k]) for k in ("modality", "body_part", "view") if meta.get(k))
        return f"Image {index} · {what or 'DICOM'}"
    return f"Image {index} · photo"


class ClinicianWorkspace:
    """Handlers (plain methods, testable without a browser) and the UI of the clinician tab."""

    def __init__(self, assistant, settings: DemoSettings, private: PrivateFiles | None = None):
        self.assistant = assistant
        self.settings = settings
        self.limits = settings.input_limits()
        self.private = private or PrivateFiles()
        self.uids = UidMapper()  # one key per server: a study's reports reference the same de-identified UIDs

    # -- study -------------------------------------------------------------

    def add(self, sources, study: list | None, session: str | None = None, *, bundled: bool = False):
        """Add files to the study; returns the outputs of :meth:`_study_outputs`.

        Uploads move into the session's private folder under neutral names first
        (:class:`~demos.private.PrivateFiles`). ``bundled`` marks server-side
        samples: they are not uploads, so the upload size limit does not apply to them.
        """
        study = list(study or [])
        limits = DEFAULT_LIMITS if bundled else self.limits
        known = {entry["path"] for entry in study}
        problems = []
        for source in sources or []:
            path = source if isinstance(source, str) else getattr(source, "name", None) or str(source)
            if path in known:
                continue
            if not bundled:
                try:
                    path = self.private.adopt(path, session)
                except OSError as exc:
                    log_failure("clinician.adopt", exc)
                    problems.append(f"Upload {len(study) + 1} could not be read.")
                    continue
            number = len(study) + 1
            if number > MAX_STUDY_IMAGES:
                problems.append(f"A study holds at most {MAX_STUDY_IMAGES} images; the rest were not added.")
                break
            try:
                with timed("clinician.add_image"):
                    _, meta, kind = _render(path, None, limits)
            except Exception as exc:  # shown in the page; the rest of the study is kept
                log_failure("clinician.add_image", exc)
                problems.append(f"Upload {number} was not added: {error_message(exc)}")
                continue
            study.append({"path": path, "label": _label(number, meta, kind), "meta": meta, "kind": kind,
                          "bundled": bundled})
            known.add(path)
        status = status_error(" ".join(problems)) if problems else (
            status_ok(f"{len(study)} image(s) in the study. Metadata is de-identified on load.") if study else "")
        return self._study_outputs(study, study[-1]["label"] if study else None, status)

    def add_sample(self, study):
        from multimodal.samples import resolve_sample

        try:
            path = str(resolve_sample(SAMPLE_FILM))
        except Exception as exc:
            return self._study_outputs(list(study or []), None, status_error(error_message(exc)))
        return self.add([path], study, bundled=True)

    def clear_study(self):
        return self._study_outputs([], None, "")

    def _study_outputs(self, study: list, selected: str | None, status: str):
        """(study, selector, viewer, preset, center, width, meta, status)."""
        choices = [entry["label"] for entry in study]
        viewer, meta, center, width = self._view(study, selected, "Default", None, None)
        return (study, gr().update(choices=choices, value=selected), viewer, "Default", center, width, meta, status)

    # -- viewer --------------------------------------------------------------

    def _entry(self, study, label):
        for entry in study or []:
            if entry["label"] == label:
                return entry
        return None

    def _view(self, study, label, preset, center, width):
        """(viewer image, meta, center slider update, width slider update) for one image."""
        entry = self._entry(study, label)
        if entry is None:
            return None, {}, gr().update(interactive=False), gr().update(interactive=False)
        window = window_spec(preset, center, width) if entry["kind"] == "dicom" else None
        limits = DEFAULT_LIMITS if entry.get("bundled") else self.limits
        pixels, meta, _ = _render(entry["path"], window, limits)
        used = meta.get("window") or {}
        if entry["kind"] != "dicom" or "center" not in used:
            return pixels, meta, gr().update(interactive=False), gr().update(interactive=False)
        (c_lo, c_hi), (w_lo, w_hi) = slider_ranges(meta)
        c, w = float(used["center"]), float(used["width"])
        return (pixels, meta,
                gr().update(minimum=min(c_lo, c), maximum=max(c_hi, c), value=c, interactive=True),
                gr().update(minimum=min(w_lo, w), maximum=max(w_hi, w), value=w, interactive=True))

    def select(self, label, study):
        """Show another image of the study with its own window: (viewer, preset, center, width, meta)."""
        viewer, meta, center, width = self._view(study, label, "Default", None, None)
        return viewer, "Default", center, width, meta

    def rewindow(self, label, preset, center, width, study):
        """Apply a preset or the sliders: (viewer, preset, center, width, meta)."""
        try:
            viewer, meta, c, w = self._view(study, label, preset, center, width)
        except Exception as exc:
            raise_ui_error("clinician.window", exc)
        return viewer, preset, c, w, meta

    def slide(self, label, center, width, study):
        """Sliders moved by hand: switch to a custom window."""
        return self.rewindow(label, "Custom", center, width, study)

    # -- chat ----------------------------------------------------------------

    def chat(self, question, history, study):
        """Stream the answer about every image of the study: yields (history, history, question box, note, evidence,
        answer): the last is the finished :class:`~multimodal.pipeline.Answer` (None until then), which "Why?"
        explains.

        The history comes from the server-side conversation state, never from the
        page: a chat component's content sent by a client is not trusted (the
        history is yielded twice, for that state and for the chat display).
        """
        question = (question or "").strip()
        history = list(history or [])
        if not question:
            raise user_error("Type a question first.", "No question")
        study = list(study or [])
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": ""}]
        yield history, history, "", "Thinking…", "", None
        answer = ""
        try:
            with timed("clinician.chat", images=len(study)):
                # Uploads are decoded under this server's limits; bundled samples are trusted server files.
                images = [load_image(e["path"], limits=DEFAULT_LIMITS if e.get("bundled") else self.limits)
                          for e in study]
                for answer in grounded_answer(self.assistant, question, images=images):
                    history[-1] = {"role": "assistant", "content": answer}
                    yield history, history, "", "Answering…", "", None
        except Exception as exc:
            raise_ui_error("clinician.chat", exc)
        if not answer.strip():
            history[-1] = {"role": "assistant", "content": "(no answer was generated)"}
        t = self.assistant.last_timings
        log_event("clinician.answer", tokens=t.new_tokens, seconds=t.total_s,
                  revised=int(self.assistant.last_answer.revised))
        done = self.assistant.last_answer
        yield history, history, "", timing_note(self.assistant), evidence_markdown(done), done

    # -- why -----------------------------------------------------------------

    def why(self, enabled, answer, label, study):
        """Explain ``answer`` about the selected image, each view as soon as it is ready.

        Yields (panel, answer map, Grad-CAM, fact rows, note, explanation for the report); hides the panel
        when "Why?" is off.
        """
        g = gr()
        if not enabled:
            yield g.update(visible=False), None, g.update(value=None, visible=False), [], "", None
            return
        if answer is None:
            yield (g.update(visible=True), None, g.update(value=None, visible=False), [],
                   "Ask a question first: the explanation is of the last answer.", None)
            return
        from multimodal.explain import CAVEAT, explain_steps

        index = self._image_index(study, label, answer)
        pixels = answer.request.images[index - 1].pixels if answer.request.images else None
        yield g.update(visible=True), None, g.update(value=None, visible=False), [], "Explaining…", None
        try:
            with timed("clinician.why", images=len(answer.request.images)) as facts:
                for out in explain_steps(self.assistant, answer, index):
                    maps = out.overlays(pixels) if pixels is not None else {}
                    rows = [[f.part, f.text, round(f.delta, 3)] for f in out.facts]
                    cam = maps.get("grad_cam")
                    yield (g.update(visible=True), maps.get("answer_map"), g.update(value=cam, visible=cam is not None),
                           rows, f"{CAVEAT}\n\n{why_note(out)}", None)
                facts.update(passes=out.passes)
        except Exception as exc:
            raise_ui_error("clinician.why", exc)
        yield (g.update(visible=True), maps.get("answer_map"), g.update(value=cam, visible=cam is not None), rows,
               f"{CAVEAT}\n\n{why_note(out)}", out.as_dict(pixels))

    @staticmethod
    def _image_index(study, label, answer) -> int:
        """1-based index of the selected image among those the answer saw (the first when it is not one)."""
        labels = [entry["label"] for entry in study or []]
        index = labels.index(label) + 1 if label in labels else 1
        return index if index <= len(answer.request.images) else 1

    def export(self, history, study, session: str | None = None, explained: dict | None = None):
        """Write the conversation (and the last explanation, when there is one) as Markdown + JSON into the
        session's private folder; returns both paths."""
        if not history:
            raise user_error("There is no conversation to export yet.", "Nothing to export")
        try:
            report = Report(workspace="clinician", turns=history_to_turns(history),
                            images=[entry["meta"] for entry in study or []], models=model_names(self.assistant),
                            explanations=[explained] if explained else []).cite(self.assistant.knowledge)
            paths = report.export(self.private, session)
        except Exception as exc:  # never a traceback that could quote the conversation
            raise_ui_error("clinician.export", exc)
        log_event("clinician.export", turns=len(report.turns))
        return paths

    def generate_report(self, question, study, session: str | None = None):
        """The study's structured report (Technique from the headers, the rest by the LLM, held to the evidence):
        its four files (Markdown, JSON, DICOM SR, FHIR) in the session's private folder, and its Markdown.

        The question box, when filled, is the clinical question the report answers.
        """
        from multimodal.report import generate_report, read_study, report_files

        study = list(study or [])
        if not study:
            raise user_error("Load a study first: the report is about its images.", "No study")
        try:
            with timed("clinician.report", images=len(study)) as facts:
                # Uploads are decoded under this server's limits; bundled samples are trusted server files.
                images = [image for e in study for image in read_study(
                    [e["path"]], self.uids, DEFAULT_LIMITS if e.get("bundled") else self.limits)]
                report = generate_report(self.assistant, images, (question or "").strip())
                paths = self.private.write_files(session, report_files(report, images))
                facts.update(sentences=len(report.sentences()), removed=len(report.checks.get("removed", [])))
        except Exception as exc:  # never a traceback that could quote the study
            raise_ui_error("clinician.report", exc)
        return [str(p) for p in paths], report.to_markdown()

    # -- UI ------------------------------------------------------------------

    def render(self) -> None:
        """Build the tab's components and wire them (call inside a ``gr.Tab``)."""
        g = gr()
        study = g.State([])
        conversation = g.State([])  # the chat as the server saw it: exports and follow-ups read this
        answered = g.State(None)  # the last Answer (its request and prompt plan): what "Why?" explains
        explained = g.State(None)  # the last explanation, for the report
        session = g.State(new_session, delete_callback=self.private.end_session)
        with g.Row(equal_height=False):
            with g.Column(scale=5, min_width=360):
                files = g.File(label="Study images: DICOM, PNG, JPEG (several per study)", file_count="multiple",
                               type="filepath", height=110, elem_id="clinician-files")
                with g.Row():
                    sample = g.Button("Load sample chest film", size="sm", elem_id="clinician-sample")
                    clear_study = g.Button("Clear study", size="sm", variant="secondary")
                status = g.HTML(elem_id="clinician-status")
                selector = g.Dropdown(label="Image", choices=[], interactive=True, elem_id="clinician-selector")
                viewer = g.Image(label="Viewer", type="numpy", format="png", interactive=False, height=460,
                                 buttons=["fullscreen", "download"], elem_id="clinician-viewer")
                preset = g.Radio(WINDOW_CHOICES, value="Default", label="Window preset", elem_id="window-preset")
                with g.Row():
                    center = g.Slider(label="Level (window centre)", minimum=0, maximum=4096, value=2048,
                                      interactive=False, elem_id="window-center")
                    width = g.Slider(label="Window width", minimum=1, maximum=4096, value=4096,
                                     interactive=False, elem_id="window-width")
                with g.Accordion("De-identified metadata", open=False):
                    meta = g.JSON(label="Metadata", elem_id="clinician-meta")
            with g.Column(scale=6, min_width=420):
                chatbot = g.Chatbot(label="MedAny", height=560, elem_id="clinician-chat", buttons=["copy"],
                                    placeholder="Load a study, then ask about it. Answers stream here.")
                question = g.Textbox(label="Question", placeholder=EXAMPLE_QUESTIONS[0], lines=2,
                                     elem_id="clinician-question")
                with g.Row():
                    ask = g.Button("Ask", variant="primary", elem_id="clinician-ask")
                    clear_chat = g.Button("Clear chat", variant="secondary")
                    export = g.Button("Export report", variant="secondary", elem_id="clinician-export")
                    make_report = g.Button("Generate report", variant="secondary", elem_id="clinician-generate-report")
                note = g.Markdown(elem_classes=["medany-note"], elem_id="clinician-note")
                evidence = g.Markdown(elem_classes=["medany-evidence"], elem_id="clinician-evidence")
                why = g.Checkbox(label="Why? Show what the last answer rests on (maps and facts)", value=False,
                                 elem_id="clinician-why")
                with g.Column(visible=False, elem_id="clinician-why-panel") as why_panel:
                    with g.Row():
                        why_map = g.Image(label="Answer map: image tokens the answer rests on", type="numpy",
                                          format="png", interactive=False, elem_id="clinician-why-map")
                        why_cam = g.Image(label="Grad-CAM of the classifier line", type="numpy", format="png",
                                          interactive=False, visible=False, elem_id="clinician-why-cam")
                    why_facts = g.Dataframe(headers=FACT_HEADERS, datatype=["str", "str", "number"], type="array",
                                            interactive=False, wrap=True, elem_id="clinician-why-facts",
                                            label="Prompt facts: the answer's log-probability lost without each")
                    why_note = g.Markdown(elem_classes=["medany-note"], elem_id="clinician-why-note")
                g.Examples(EXAMPLE_QUESTIONS, inputs=[question], label="Example questions")
                report_files = g.File(label="Report (Markdown and JSON)", file_count="multiple",
                                      interactive=False, visible=True, elem_id="clinician-report")
                structured_files = g.File(label="Structured report: Markdown, JSON, DICOM SR (.dcm), FHIR (.json)",
                                          file_count="multiple", interactive=False, elem_id="clinician-structured")
                with g.Accordion("Structured report", open=False):
                    structured = g.Markdown(elem_id="clinician-structured-report")

        study_out = [study, selector, viewer, preset, center, width, meta, status]
        # The upload moves to a private folder under a neutral name; the file box is emptied (it named the file).
        files.upload(self.add, [files, study, session], study_out, api_name="clinician_add") \
            .then(lambda: None, None, [files], api_visibility="undocumented")
        sample.click(self.add_sample, [study], study_out, api_name="clinician_sample")
        clear_study.click(self.clear_study, None, study_out, api_name="clinician_clear_study")
        view_out = [viewer, preset, center, width, meta]
        selector.input(self.select, [selector, study], view_out, api_name="clinician_select")
        preset.input(self.rewindow, [selector, preset, center, width, study], view_out, api_name="clinician_window")
        center.release(self.slide, [selector, center, width, study], view_out, api_visibility="undocumented")
        width.release(self.slide, [selector, center, width, study], view_out, api_visibility="undocumented")
        chat_args = dict(fn=self.chat, inputs=[question, conversation, study],
                         outputs=[conversation, chatbot, question, note, evidence, answered], concurrency_id=LLM_SLOT)
        why_args = dict(fn=self.why, inputs=[why, answered, selector, study],
                        outputs=[why_panel, why_map, why_cam, why_facts, why_note, explained], concurrency_id=LLM_SLOT)
        ask.click(api_name="clinician_chat", **chat_args).success(api_visibility="undocumented", **why_args)
        question.submit(api_visibility="undocumented", **chat_args).success(api_visibility="undocumented",
                                                                            **why_args)
        why.change(api_name="clinician_why", **why_args)
        clear_chat.click(lambda: ([], [], "", "", None, None), None,
                         [conversation, chatbot, note, evidence, answered, explained], api_visibility="undocumented")
        export.click(self.export, [conversation, study, session, explained], [report_files],
                     api_name="clinician_export")
        make_report.click(self.generate_report, [question, study, session], [structured_files, structured],
                          api_name="clinician_report", concurrency_id=LLM_SLOT)
