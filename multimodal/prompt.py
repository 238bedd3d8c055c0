"""How the assistant lays out one user turn: the system prompt, one line per medium, the question.

The pipeline builds every request with these functions, and the training
recipes build their "assistant-format" data with the same ones, so a projector
is trained on exactly the prompt it will meet at inference.
"""

from __future__ import annotations

import json
from typing import Mapping, Sequence

from .image_domain import asks_about_scan
from .template import PLACEHOLDERS

SYSTEM_PROMPT = (
    "You are MedAny, a careful medical assistant for clinicians and dietitians. "
    "The lines before the question are findings from MedAny's tools (DICOM header fields, a speech transcript, "
    "an image classifier's labels, a nutrient table). Treat them as the facts of this case: name foods, symptoms, "
    "medicines, durations, modalities and body parts as the findings give them, and copy their numbers exactly. "
    "Never state a finding they do not give: no medical model has read the image pixels. "

    "Be concise and practical. You are a research tool, not a diagnosis: advise confirming with a qualified clinician."
)

# What a DICOM modality code means, written beside it so a small LLM need not know the codes.
MODALITY_NAMES = {"CR": "computed radiography, an X-ray", "DX": "digital radiography, an X-ray",
                  "CT": "computed tomography", "MR": "magnetic resonance imaging", "US": "ultrasound",
                  "MG": "mammography", "NM": "nuclear medicine", "PT": "positron emission tomography",
                  "XA": "X-ray angiography", "RF": "fluoroscopy"}

DICOM_FIELDS = (("modality", "modality"), ("body_part", "body part"), ("view", "view"), ("age_band", "age"),
                 ("sex", "sex"))


TOOLS_NOTE = (" Call a tool only when the question needs a lookup one of them offers; answer greetings and general "
              "questions directly, without a tool.")
"""Ends the system prompt when the model is offered tools (small models call one for anything otherwise)."""

CITE_KNOWLEDGE = ("(Knowledge lines are rows of MedAny's knowledge base: cite a row you use with its bracketed id, "
                  "exactly as written; never write any other code.)")
"""Follows the knowledge lines of a prompt (only when there are some)."""

JSON_ANSWER = "Answer with one JSON value that matches this JSON schema: {schema}"
"""Follows the question when the answer is a JSON value (:func:`multimodal.calling.json_answer`)."""

NO_DESCRIPTION = "image attached"
"""The line of an image nothing could describe (a photo without a classifier, tools off)."""

NOT_A_SCAN = "not a radiograph or medical scan"
"""What an image the domain check rejects is (:mod:`multimodal.image_domain`): said in its line and in answers."""

SAY_NOT_A_SCAN = ("{labels} {verb} " + NOT_A_SCAN + " (MedAny's image check): begin the answer by saying so, and "
                  "describe nothing in it as a scan.")
"""Follows a question that asks about a scan when an attached picture is no scan."""


REPORT_QUESTION = (
    "Write the imaging report of this study. The technique is given, copied from the DICOM header. Findings: restate "
    "what the DICOM line says about the study (modality, body part, view, the patient's age band and sex), in full "
    "sentences. Impression: one sentence for the referring clinician: what the study is, and that a qualified reader "
    "must review the images for the clinical question. Limitations: what this report cannot say. No one has read the "
    "image pixels: never state a finding, a disease or a normal result. Knowledge lines explain the words of the "
    "clinical question; they are not findings of this study.")
"""What the LLM is asked when it writes a structured report (:mod:`multimodal.report`), as JSON under its schema."""

CLINICAL_QUESTION = "Clinical question: {question}"
"""Follows :data:`REPORT_QUESTION` when the clinician gave one (``medany report --question``)."""


def report_question(question: str = "") -> str:
    """The request for a structured report, with the clinician's own question (if any) after it."""
    question = " ".join(question.split())
    return REPORT_QUESTION + (f"\n{CLINICAL_QUESTION.format(question=question)}" if question else "")


def media_label(kind: str, index: int) -> str:
    """``"Image 1"`` / ``"Audio 2"`` (``index`` counts from 1)."""
    return f"{kind.capitalize()} {index}"


def media_line(kind: str, index: int, description: str) -> str:
    """``"Image 1: <description>"`` / ``"Audio 2: <description>"`` (``index`` counts from 1)."""
    return f"{media_label(kind, index)}: {description}"


def dicom_summary(meta: Mapping) -> str:
    """``"DICOM modality CR (computed radiography, an X-ray), body part CHEST, view PA"`` from de-identified fields."""
    parts = []
    for key, label in DICOM_FIELDS:
        if meta.get(key):
            value = str(meta[key])
            name = MODALITY_NAMES.get(value.upper()) if key == "modality" else None
            parts.append(f"{label} {value}" + (f" ({name})" if name else ""))
    return " ".join(["DICOM", ", ".join(parts)]).strip()


def classifier_summary(labels: str | Sequence[tuple[str, float]]) -> str:
    """The line for a photo seen by a general (ImageNet) classifier.

    ``labels`` is ``[(label, probability)]`` best first (or preformatted text):
    the best label is stated, clearly weaker ones (under half its probability)
    follow as "less likely", so an answer has no reason to name them as the food.
    """
    if isinstance(labels, str):
        return f"photo; a general object classifier (not medical) sees: {labels}"
    top = max((p for _, p in labels), default=0.0)
    strong = ", ".join(f"{name} {p:.0%}" for name, p in labels if p >= 0.5 * top)
    weak = ", ".join(f"{name} {p:.0%}" for name, p in labels if p < 0.5 * top)
    line = f"photo; a general object classifier (not medical) sees: {strong}"
    return line + (f"; less likely: {weak}" if weak else "")


def domain_summary(verdict) -> str:
    """What the image-domain check found about a picture that is no scan
    (:class:`~multimodal.image_domain.DomainVerdict`):
    ``"not a radiograph or medical scan: a colour photograph (MedAny's image check: colour saturation 0.61)"``."""
    if verdict.reason == "food":
        why = f"a photograph of food (MedAny's image check: a general classifier sees food, {verdict.food:.0%})"
    else:
        why = f"a colour photograph (MedAny's image check: colour saturation {verdict.saturation:.2f})"
    return f"{NOT_A_SCAN}: {why}"


_TRANSLATION = '", English translation: "'


def transcript_summary(head: str, transcript: str, language: str = "", english: str = "") -> str:
    """The line for a recording with speech: ``head`` (``"recording (3.1 s)"``) and Whisper's words; for speech
    that is not English, the language (``"Spanish"``) first and Whisper's English translation after."""
    spoken = f", spoken in {language}" if language and language != "English" else ""
    translated = f'{_TRANSLATION}{english}"' if english else '"'
    return f'{head}{spoken}, transcript: "{transcript}{translated}'


def transcript_in(description: str) -> str:
    """The transcript inside a :func:`transcript_summary` line, or ``""`` when the line holds none."""
    _, found, rest = description.partition(', transcript: "')
    if not found or not rest.endswith('"'):
        return ""
    return rest.split(_TRANSLATION, 1)[0] if _TRANSLATION in rest else rest[:-1]


ANSWER_LANGUAGE = "Answer in {language}."
"""Follows the question when the answer's language is set (``--answer-language``, or a recording's language)."""


def user_turn(media_lines: Sequence[str], question: str) -> str:
    """The user message: media and context lines (descriptions and placeholders), then the question."""
    lines = list(media_lines)
    return "\n".join(lines + [f"Question: {question}" if lines else question])


def chat_messages(media_lines: Sequence[str], question: str, tools: bool = False) -> list[dict]:
    """``[system, user]`` messages for one request (``tools``: the model is offered tools)."""
    return [{"role": "system", "content": SYSTEM_PROMPT + (TOOLS_NOTE if tools else "")},
            {"role": "user", "content": user_turn(media_lines, question)}]


def literal(text: str) -> str:
    """User or tool text with any media placeholder in it made plain text (``<image>`` stays readable)."""
    for p in PLACEHOLDERS.values():
        text = text.replace(p, p[0] + "\u200b" + p[1:])
    return text


def render_plan(plan) -> list[dict]:
    """Messages for a :class:`~multimodal.pipeline.PromptPlan`: each medium's line (and its placeholder when
    its tokens are spliced), each context line, then the question and, on a second try, the correction."""
    lines: list[str] = []
    for item in plan.media:
        lines.append(literal(item.evidence.line))
        if item.spliced:
            lines.append(PLACEHOLDERS[item.kind])  # the only placeholders: one per spliced medium
    lines += [literal(e.line) for e in plan.context]
    if any(e.source == "knowledge" for e in plan.context):
        lines.append(CITE_KNOWLEDGE)
    question = plan.question if not plan.correction else f"{plan.question}\n{plan.correction}"
    photos = [item.evidence.label for item in plan.media if "photo" in item.evidence.facts.get("domain", ())]
    if photos and asks_about_scan(plan.question):
        question += "\n" + SAY_NOT_A_SCAN.format(labels=" and ".join(photos), verb="is" if len(photos) == 1 else "are")
    if plan.answer_language:
        question += "\n" + ANSWER_LANGUAGE.format(language=plan.answer_language)
    if plan.json_schema is not None:
        question += "\n" + JSON_ANSWER.format(schema=json.dumps(plan.json_schema, ensure_ascii=False))
    return chat_messages(lines, literal(question), tools=bool(plan.tools))
