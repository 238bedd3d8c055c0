"""The MedAny web demo: three workspaces (Clinician, Dietitian, Consult) in one Gradio app.

``build_demo(assistant, settings=...)`` only builds the page around an already
loaded :class:`~multimodal.pipeline.Assistant`; ``launch(demo, settings)``
serves it with the safety settings of :class:`~demos.settings.DemoSettings`
(bounded queue, upload limit, loopback unless authenticated, no telemetry).
"""

from __future__ import annotations

from .clinician import ClinicianWorkspace
from .common import gr, log, model_names, quiet_gradio_tracebacks
from .consult import ConsultWorkspace
from .dietitian import DietitianWorkspace
from .private import PrivateFiles
from .report import DISCLAIMER
from .settings import DemoSettings

TITLE = "MedAny: multimodal medical assistant (research use)"

CSS = """
.gradio-container { max-width: 1480px !important; margin: auto; }
#medany-header h1 { margin-bottom: 0.1em; font-size: 1.7em; }
#medany-header p { margin-top: 0; color: var(--body-text-color-subdued); }
#medany-disclaimer { border: 1px solid #e0a800; background: #fff8e1; color: #5d4300; border-radius: 8px;
  padding: 8px 14px; font-size: 0.92em; }
.dark #medany-disclaimer { background: #3a2f00; color: #ffe08a; }
.medany-error { border-left: 4px solid #c62828; background: #fdecea; color: #7f1d1d; padding: 8px 12px;
  border-radius: 6px; }
.medany-ok { border-left: 4px solid #2e7d32; background: #edf7ed; color: #1b4d1e; padding: 8px 12px;
  border-radius: 6px; }
.medany-note { color: var(--body-text-color-subdued); font-size: 0.88em; }
.medany-answer { min-height: 3em; }
footer { display: none !important; }
"""


def _theme():
    g = gr()
    # The default fonts are bundled with Gradio: no request to a font CDN leaves the browser.
    return g.themes.Default(primary_hue="teal", secondary_hue="slate", neutral_hue="slate", radius_size="md")


def _stack_line(assistant) -> str:
    names = model_names(assistant)
    parts = [f"**{k}** `{v}`" for k, v in names.items()]
    images = ("images reach the LLM as DICOM header fields, a general (non-medical) ImageNet classifier's labels"
              + (" and, for scans, a trained projector's tokens" if assistant.projects("image") else ""))
    audio = ("recordings as their Whisper transcript"
             + (" and a trained projector's tokens" if assistant.projects("audio") else ""))
    return " · ".join(parts) + f"  \nGrounding: {images}; {audio}. No X-ray-trained vision model is installed."


def build_demo(assistant, *, settings: DemoSettings | None = None):
    """The demo page around a loaded ``assistant``; serve it with :func:`launch`."""
    settings = settings or DemoSettings()
    settings.apply_environment()
    # Every file the demo holds (Gradio's uploads and cache, exports, samples) lives in one private folder.
    private = PrivateFiles.for_process()  # also Gradio's upload and cache folder
    g = gr()
    clinician = ClinicianWorkspace(assistant, settings, private)
    dietitian = DietitianWorkspace(assistant, settings, private)
    consult = ConsultWorkspace(assistant, settings, private)
    # delete_cache: uploads and exports older than an hour are purged every hour.
    with g.Blocks(title=TITLE, analytics_enabled=settings.analytics, delete_cache=(3600, 3600)) as demo:
        with g.Column(elem_id="medany-header"):
            g.Markdown("# MedAny\nAn any-to-any multimodal assistant for clinicians, dietitians and researchers.")
            g.Markdown(f"⚠️ **{DISCLAIMER}** Do not upload identifiable patient data unless your institution "
                       "allows it; DICOM metadata is de-identified on load and never logged.",
                       elem_id="medany-disclaimer")
        with g.Tabs():
            with g.Tab("Clinician", id="clinician"):
                clinician.render()
            with g.Tab("Dietitian", id="dietitian"):
                dietitian.render()
            with g.Tab("Consult", id="consult"):
                consult.render()
        with g.Accordion("About this stack", open=False):
            g.Markdown(_stack_line(assistant), elem_classes=["medany-note"])
    demo.medany_settings, demo.medany_files = settings, private
    return demo


def launch(demo, settings: DemoSettings | None = None, *, block: bool = True):
    """Serve ``demo`` with ``settings`` (validated: loopback or authentication).

    Returns ``(app, local_url)``; with ``block=False`` it returns at once and
    the server keeps running in a background thread (tests, notebooks).
    """
    settings = (settings or getattr(demo, "medany_settings", None) or DemoSettings()).validate()
    settings.apply_environment()
    quiet_gradio_tracebacks()  # a failed request's message can quote what the user sent
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    app, local_url, _ = demo.launch(prevent_thread_lock=not block, theme=_theme(), css=CSS,
                                    footer_links=["api"], **settings.launch_kwargs())
    log.info("demo listening on %s:%s (auth %s)", settings.host, settings.port, "on" if settings.auth else "off")
    return app, local_url
