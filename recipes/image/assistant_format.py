"""Assistant-format records for the image recipe: the exact prompt the pipeline builds.

A stage-1 projector trained on one fixed question learns to make the LLM
answer that question whatever is asked ("Modality: CR" to "what should the
patient ask?"). This format trains it on what the assistant really sends (the
system prompt, one line per image, the placeholder, ``Question: ...``) with
three kinds of turn, drawn per training image:

- ``photo`` (half): the scan arrives as a picture, so its line holds only the
  general classifier's labels, and a caption question (several phrasings) is
  answered with a sentence naming modality, body part and view. Only the
  projected image tokens carry that answer.
- ``dicom`` (a quarter): the same question about a DICOM upload, whose header
  line already names the fields; the answer must agree with it.
- ``open`` (a quarter): an open clinical question about a DICOM upload,
  answered with what the frozen LLM itself says without image tokens
  (self-distillation), so the projector learns to leave open answers alone;
  when that answer is empty, or contradicts the header line (the grounding
  check: a frozen LLM that claims "a mass in the left kidney" from a header
  is not a reply to teach), the turn becomes a ``dicom`` one.

Held-out records are all ``photo`` turns: the case the projector is for.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from multimodal.evidence import dicom_evidence
from multimodal.grounding import check
from multimodal.prompt import chat_messages, dicom_summary, media_line
from multimodal.template import PLACEHOLDERS

from ..distill import frozen_answer

CAPTION_QUESTIONS = (
    "What modality, body part and view is this scan?",
    "What kind of scan is this?",
    "Describe this image.",
    "Which imaging modality was used here?",
    "What am I looking at?",
)
OPEN_QUESTIONS = (
    "What does this scan show, and what should the patient ask their doctor?",
    "What should I look for on this image?",
    "Summarise this study for the referring clinician.",
    "Is there anything urgent on this image?",
)
MODALITY_NAMES = {
    "CR": "computed radiography", "DX": "digital radiography", "CT": "computed tomography",
    "MR": "magnetic resonance", "US": "ultrasound", "NM": "nuclear medicine", "PT": "PET",
    "OT": "other", "SEG": "segmentation", "XA": "X-ray angiography", "MG": "mammography",
}  # fmt: skip
FORMS = ("photo", "photo", "dicom", "open")


def caption_sentence(fields: dict) -> str:
    """``"This is a CR (computed radiography) image of the chest, PA view."``."""
    code = fields["modality"]
    named = MODALITY_NAMES.get(code)
    article = "an" if len(code) <= 2 and code[0] in "AEFHILMNORSX" else "a"  # said letter by letter: "an MR"
    text = f"This is {article} {code} ({named}) image" if named else f"This is {article} {code} image"
    if fields.get("body_part"):
        text += f" of the {fields['body_part'].lower()}"
    if fields.get("view"):
        text += f", {fields['view']} view"
    return text + "."


class AssistantFormat:
    """Builds assistant-format records with ``assistant`` (default: the stack of ``llm``, no projectors).

    ``to_record(shot, how, png)`` is :func:`recipes.image.make_data.make_dataset`'s hook.
    """

    def __init__(self, rng, assistant=None, max_new_tokens: int = 128, llm: str = "embedded-small",
                 backend: str = "transformers"):
        self.rng = rng
        self.max_new_tokens = max_new_tokens
        self.llm, self.backend = llm, backend
        self._open_answers: dict[tuple, str] = {}
        if assistant is not None:
            self.__dict__["assistant"] = assistant

    @cached_property
    def assistant(self):
        """Loaded on first use, so the caption-only paths need no model."""
        from multimodal.config import StackConfig
        from multimodal.pipeline import Assistant

        # By default the transformers backend: the frozen LLM exactly as training sees it.
        return Assistant.load(StackConfig(llm=self.llm, backend=self.backend, speech="", image_projector=None))

    def photo_line(self, png: Path) -> str:
        from multimodal.io import load_image

        return media_line("image", 1, self.assistant.describe_image(load_image(png)))

    def open_answer(self, fields: dict, question: str) -> str:
        """What the frozen LLM answers from the header line alone (memoised per fields and question)."""
        key = (tuple(sorted(fields.items())), question)
        if key not in self._open_answers:
            line = media_line("image", 1, dicom_summary(fields))
            reply = frozen_answer(self.assistant, [line], question, max_new_tokens=self.max_new_tokens)
            grounded = check(reply, [dicom_evidence("Image 1", dicom_summary(fields), fields)]).ok
            self._open_answers[key] = reply if grounded else ""  # distil only answers that keep to the header
        return self._open_answers[key]

    def to_record(self, shot, how: dict, png: Path) -> dict:
        fields = dict(shot.scan.fields)
        form = "photo" if shot.split == "eval" else self.rng.choice(FORMS)
        if form == "open":
            question = self.rng.choice(OPEN_QUESTIONS)
            reply = self.open_answer(fields, question)
            if not reply:  # nothing to distil (the LLM ended at once): ask the caption question instead
                form = "dicom"
        if form != "open":
            question, reply = self.rng.choice(CAPTION_QUESTIONS), caption_sentence(fields)
        line = self.photo_line(png) if form == "photo" else media_line("image", 1, dicom_summary(fields))
        system, user = chat_messages([line, PLACEHOLDERS["image"]], question)
        record = shot.record(how)
        record["form"] = form
        record["conversations"] = [{"from": "system", "value": system["content"]},
                                   {"from": "human", "value": user["content"]}, {"from": "gpt", "value": reply}]
        if form == "open":
            record.pop("fields")  # nothing to score: the reference is the LLM's own answer
        return record
