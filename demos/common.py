"""What every workspace shares: safe logging, error display, image thumbnails, the LLM slot.

Logging here records *that* something happened and how long it took, never
what: no questions, answers, transcripts, metadata values or file names, so a
server log holds no patient data.
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager

import numpy as np

from multimodal.errors import InputError, MedAnyError

log = logging.getLogger("medany.demo")

LLM_SLOT = "medany-llm"  # one concurrency id: every event that runs a model waits for the same slot
DISPLAY_MAX_SIDE = 1024  # the viewer never needs more pixels than a screen shows


def gr():
    """Gradio, imported on first use (the package imports without it)."""
    from multimodal.errors import require

    return require("gradio", "all")


def log_event(event: str, **numbers) -> None:
    """Log an event name with numeric facts only (counts, seconds)."""
    facts = " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in numbers.items()
                     if isinstance(v, (int, float)))
    log.info("%s %s", event, facts)


def error_message(exc: BaseException) -> str:
    """The text a user sees for ``exc``: our own messages verbatim, anything else generic."""
    if isinstance(exc, (InputError, MedAnyError)):
        return str(exc)
    return ("Something went wrong while processing this request. Please try again; if it keeps happening, "
            "tell the administrator.")


def log_failure(event: str, exc: BaseException) -> None:
    # The exception type only: messages of third-party errors can quote file content.
    log.warning("%s failed: %s", event, type(exc).__name__)


def status_error(message: str) -> str:
    """Markdown for the status line of a workspace: a visible, readable error."""
    return f"<div class='medany-error' role='alert'>⚠️ {message}</div>"


def status_ok(message: str) -> str:
    return f"<div class='medany-ok'>{message}</div>"


class _TypeOnlyTraceback:
    """Stands in for the ``traceback`` module inside Gradio, whose ``print_exc()`` writes every failed
    request's exception to stderr, message included: a pydantic error on a malformed chat history quotes
    the history (a patient's name). The type still reaches our log; the message does not."""

    def __init__(self, real):
        self._real = real

    def print_exc(self, *args, **kwargs) -> None:
        import sys

        exc = sys.exc_info()[1]
        log.warning("request failed in Gradio: %s", type(exc).__name__ if exc else "unknown")

    def __getattr__(self, name):
        return getattr(self._real, name)


def quiet_gradio_tracebacks() -> None:
    """Make Gradio log failures by type only (see :class:`_TypeOnlyTraceback`); safe to call twice."""
    import importlib
    import traceback

    for name in ("gradio.queueing", "gradio.routes", "gradio.utils"):
        module = importlib.import_module(name)
        if getattr(module, "traceback", None) is traceback:
            module.traceback = _TypeOnlyTraceback(traceback)


def adopt_upload(private, path, session: str | None, event: str):
    """An upload moved into the session's private folder under a neutral name (its new path; empty stays
    empty), or a clean error in the page."""
    if not path:
        return path
    try:
        return private.adopt(path, session)
    except OSError as exc:
        raise_ui_error(event, exc)


def raise_ui_error(event: str, exc: BaseException):
    """Re-raise ``exc`` as a ``gr.Error`` with a clean message (modal in the page, error for API clients)."""
    log_failure(event, exc)
    raise gr().Error(error_message(exc), title="MedAny could not do that", print_exception=False) from None


@contextmanager
def timed(event: str, **numbers):
    """Log ``event`` with its duration when the block ends (and the failure type if it raises)."""
    t0 = time.perf_counter()
    try:
        yield numbers
    except Exception as exc:
        log_failure(event, exc)
        raise
    log_event(event, seconds=time.perf_counter() - t0, **numbers)


def to_display(pixels: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """float ``[H, W, 3]`` in [0, 1] -> uint8 ``[h, w, 3]`` no larger than ``max_side`` (area filter)."""
    from PIL import Image

    arr = (np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    h, w = arr.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return arr
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.BOX))


def timing_note(assistant) -> str:
    """One line on how the last answer was produced (numbers only)."""
    t = getattr(assistant, "last_timings", None)
    if t is None or not getattr(t, "total_s", 0):
        return ""
    return (f"Answered in {t.total_s:.1f} s · first token {t.first_token_s:.1f} s · "
            f"{t.new_tokens} tokens at {t.tokens_per_s:.0f} tok/s")


def model_names(assistant) -> dict[str, str]:
    """Which models make up the stack (names only), for headers and reports."""
    cfg = assistant.config
    names = {"llm": cfg.llm}
    if cfg.vision:
        names["vision"] = cfg.vision
    if cfg.speech:
        names["speech"] = cfg.speech
    for kind in ("image", "audio"):
        if assistant.projects(kind):
            names[f"{kind} projector"] = "trained"
    return names


def user_error(message: str, title: str = "MedAny"):
    """A ``gr.Error`` for a plain user mistake (no traceback in the server log)."""
    return gr().Error(message, title=title, print_exception=False)


def grounded_answer(assistant, question: str, *, images=(), audios=(), context=()):
    """Stream an answer held to its evidence: yields the answer text so far.

    When the grounding check flags the finished draft, the assistant answers
    again with the correction and the new text replaces the draft in the page;
    if that one still contradicts the evidence its offending sentences are
    dropped (``assistant.last_answer`` says what happened).
    """
    text = ""
    for piece in assistant.stream(question, images=images, audios=audios, context=context):
        text += piece
        yield text
    if assistant.last_answer.grounding.ok:
        return
    yield text + "\n\n*Checking this answer against the evidence…*"
    text = ""
    for piece in assistant.revise():
        text += piece
        yield text
    yield assistant.last_answer.text


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def md_escape(text: str) -> str:
    """``text`` shown literally in Markdown (transcripts and labels are data, not markup)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def evidence_markdown(answer) -> str:
    """The evidence beside an answer, and whether the answer keeps to it."""
    if answer is None:
        return ""
    lines = ["**Evidence** (what MedAny's tools found; the answer is held to it)", ""]
    lines += [f"- **{md_escape(e.label)}** ({e.source}): {md_escape(e.text)}" for e in answer.evidence] or \
        ["- (none: the question alone)"]
    g = answer.grounding
    lines.append("")
    if answer.revised:
        lines.append("⚠️ The first answer contradicted the evidence; MedAny answered again.")
    if g.ok:
        lines.append(f"✓ Consistent with the evidence ({g.checked} statement(s) checked).")
    else:
        said = "; ".join(md_escape(i.describe()) for i in g.issues)
        lines.append(f"⚠️ Sentences that contradicted the evidence were removed ({said}).")
    return "\n".join(lines)
