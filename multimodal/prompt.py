"""How the assistant lays out one user turn: the system prompt, one line per medium, the question.

The pipeline builds every request with these functions, and the training
recipes build their "assistant-format" data with the same ones, so a projector
is trained on exactly the prompt it will meet at inference.
"""

from __future__ import annotations

from typing import Mapping, Sequence

SYSTEM_PROMPT = (
    "You are MedAny, a careful medical assistant for clinicians and dietitians. "
    "Use the findings provided with the question. Be concise and practical. "
    "You are a research tool, not a diagnosis: advise confirming with a qualified clinician."
)

_DICOM_FIELDS = (("modality", "modality"), ("body_part", "body part"), ("view", "view"), ("age_band", "age"),
                 ("sex", "sex"))


NO_DESCRIPTION = "image attached"
"""The line of an image nothing could describe (a photo without a classifier, tools off)."""


def media_line(kind: str, index: int, description: str) -> str:
    """``"Image 1: <description>"`` / ``"Audio 2: <description>"`` (``index`` counts from 1)."""
    return f"{kind.capitalize()} {index}: {description}"


def dicom_summary(meta: Mapping) -> str:
    """``"DICOM modality CR, body part CHEST, view PA"`` from de-identified header fields."""
    return " ".join(["DICOM", ", ".join(f"{label} {meta[key]}" for key, label in _DICOM_FIELDS if meta.get(key))]).strip()


def classifier_summary(labels: str) -> str:
    """The line for a photo seen by a general (ImageNet) classifier: ``labels`` is ``"x 91%, y 2%"``."""
    return f"photo; a general object classifier (not medical) sees: {labels}"


def transcript_summary(head: str, transcript: str) -> str:
    """The line for a recording with speech: ``head`` (``"recording (3.1 s)"``) and Whisper's words."""
    return f'{head}, transcript: "{transcript}"'


def transcript_in(description: str) -> str:
    """The transcript inside a :func:`transcript_summary` line, or ``""`` when the line holds none."""
    _, found, rest = description.partition(', transcript: "')
    return rest[:-1] if found and rest.endswith('"') else ""


def user_turn(media_lines: Sequence[str], question: str) -> str:
    """The user message: media lines (descriptions and placeholders), then the question."""
    lines = list(media_lines)
    return "\n".join(lines + [f"Question: {question}" if lines else question])


def chat_messages(media_lines: Sequence[str], question: str) -> list[dict]:
    """``[system, user]`` messages for one request."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user_turn(media_lines, question)}]
