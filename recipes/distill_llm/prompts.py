"""The requests the teacher answers: the recipes' transcripts and DICOM header lines, as the pipeline words them.

Each request is text only, laid out by :mod:`multimodal.prompt` exactly as the assistant sends it (system
prompt, one evidence line, ``Question: ...``), so the student learns on the prompt it will meet:

- **speech**: a patient sentence of the speech recipe's grammar (:mod:`recipes.speech.sentences`) as the
  line the pipeline writes for a recording (``Audio 1: recording (2.8 s), transcript: "..."``).
- **image**: the de-identified header line of a scan of the image recipe (:mod:`recipes.image.scans`:
  modality, body part, view), with a patient sex and age band as real headers carry them.

Held-out design, the recipes' own: held-out requests use the speech recipe's held-out sentences (never
spoken in training) and the image recipe's held-out scan groups, and half of them ask questions that no
training request asks (``new_questions``). No held-out prompt appears verbatim in training. Groups:
``speech/train_questions``, ``speech/new_questions``, ``image/train_questions``, ``image/new_questions``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from multimodal.evidence import Evidence, dicom_evidence, transcript_evidence
from multimodal.prompt import chat_messages, dicom_summary, media_line, transcript_summary

from ..dataset import seeded

SPEECH_QUESTIONS = (
    "Summarise what the patient reported: the symptom and how long it has lasted.",
    "What is the patient's complaint, and since when?",
    "Transcribe the patient and answer briefly.",
    "What should the patient do next?",
    "Write a one-line note for the patient's record.",
)
SPEECH_NEW_QUESTIONS = (
    "What did the patient say, and what would you advise?",
    "Give the clinician a short summary of this consultation.",
)
IMAGE_QUESTIONS = (  # the image recipe's caption and open questions (recipes/image/assistant_format.py)
    "What modality, body part and view is this scan?",
    "What kind of scan is this?",
    "Describe this image.",
    "Which imaging modality was used here?",
    "What does this scan show, and what should the patient ask their doctor?",
    "What should I look for on this image?",
    "Summarise this study for the referring clinician.",
    "Is there anything urgent on this image?",
)
IMAGE_NEW_QUESTIONS = (
    "Which study is this, and what can it tell us?",
    "Explain this image to the patient in plain words.",
)
SEXES = ("F", "M")
AGE_BANDS = ("20-29", "40-49", "60-69", "80-89")
WORDS_PER_SECOND = 2.5
"""Speaking rate that sets a recording's duration in its line (the recipe speaks at 130-180 words a minute)."""
GROUPS = ("speech/train_questions", "speech/new_questions", "image/train_questions", "image/new_questions")

_AGE = re.compile(r"\b(\d{1,3})(?:[- ]years?[- ]old|[- ]y/?o\b)|\baged? (\d{1,3})\b", re.IGNORECASE)
_SEX_WORDS = {"M": re.compile(r"\b(?:male|man|men|boy|gentleman)\b", re.IGNORECASE),
              "F": re.compile(r"\b(?:female|woman|women|girl|lady)\b", re.IGNORECASE)}


@dataclass
class Request:
    """One text-only request: its evidence line, question and what the line states."""

    id: str
    kind: str
    """``speech`` or ``image``."""
    group: str
    """``train`` for training requests, else one of :data:`GROUPS`."""
    line: str
    """The evidence line, as the prompt shows it (``Audio 1: ...`` / ``Image 1: ...``)."""
    question: str
    source: dict = field(default_factory=dict)
    """What the line was made from: ``{"transcript": ...}`` or ``{"meta": {...}}`` (rebuilds the evidence)."""

    def messages(self) -> list[dict]:
        """``[system, user]`` as the pipeline builds them."""
        return chat_messages([self.line], self.question)

    def evidence(self) -> Evidence:
        return request_evidence(self.kind, self.line, self.source)


def request_evidence(kind: str, line: str, source: dict) -> Evidence:
    """The :class:`Evidence` the grounding check and the faithfulness scores hold an answer to."""
    label, text = line.split(": ", 1)
    if kind == "speech":
        return transcript_evidence(label, text, source["transcript"])
    return dicom_evidence(label, text, source["meta"])


def contradicts_sex(answer: str, source: dict) -> bool:
    """The answer calls the patient the other sex than the header's (``"a male patient"`` for sex F)."""
    sex = (source.get("meta") or {}).get("sex")
    other = {"F": "M", "M": "F"}.get(sex or "")
    return bool(other and _SEX_WORDS[other].search(answer))


def invented_demographics(answer: str, source: dict) -> list[str]:
    """Age or sex the answer gives the patient that the evidence does not: the other sex than the header's, a sex
    when the evidence has none (a transcript), or an age outside the header's band (any age, without one)."""
    meta = source.get("meta") or {}
    found = []
    if meta.get("sex"):
        if contradicts_sex(answer, source):
            found.append(f"calls the patient the other sex than the header's ({meta['sex']})")
    elif any(p.search(answer) for p in _SEX_WORDS.values()):
        found.append("gives the patient a sex the evidence does not state")
    band = [int(x) for x in re.findall(r"\d+", meta.get("age_band") or "")]
    for m in _AGE.finditer(answer):
        age = int(m.group(1) or m.group(2))
        if len(band) != 2 or not band[0] <= age <= band[1]:
            found.append(f"gives the patient an age the evidence does not state ({m.group().strip()})")
    return found


def speech_request(rid: str, group: str, text: str, question: str) -> Request:
    seconds = max(1.0, len(text.split()) / WORDS_PER_SECOND)
    line = media_line("audio", 1, transcript_summary(f"recording ({seconds:.1f} s)", text))
    return Request(rid, "speech", group, line, question, {"transcript": text})


def image_request(rid: str, group: str, fields: dict, sex: str, age_band: str, question: str) -> Request:
    meta = {**fields, "age_band": age_band, "sex": sex}
    return Request(rid, "image", group, media_line("image", 1, dicom_summary(meta)), question, {"meta": meta})


def build_requests(n_train: int, n_eval: int, seed: int = 0, *, scans=None) -> tuple[list[Request], list[Request]]:
    """``(train, held_out)``: ``n_train`` requests half speech, half image; ``n_eval`` split over :data:`GROUPS`.

    ``scans`` is ``(train_scans, held_out_scans)`` (default: the image recipe's split of pydicom's files).
    """
    from recipes.speech.sentences import split_utterances

    if scans is None:
        from recipes.image.scans import split_groups, usable_scans

        scans = split_groups(usable_scans(), seed)
    train_scans, held_scans = scans
    train_sentences, held_sentences = split_utterances(seed)
    rng = seeded(seed, "distill-train")
    train: list[Request] = []
    seen: set[tuple[str, str]] = set()
    n_speech = n_train // 2
    for i in range(n_speech):
        train.append(speech_request(f"train-speech-{i:04d}", "train", rng.choice(train_sentences).text,
                                    rng.choice(SPEECH_QUESTIONS)))
    tries = 0
    while len(train) < n_train and tries < 50 * n_train:  # distinct prompts: the header lines are few
        tries += 1
        req = image_request(f"train-image-{len(train) - n_speech:04d}", "train", rng.choice(train_scans).fields,
                            rng.choice(SEXES), rng.choice(AGE_BANDS), rng.choice(IMAGE_QUESTIONS))
        if (req.line, req.question) not in seen:
            seen.add((req.line, req.question))
            train.append(req)
    seen |= {(r.line, r.question) for r in train}
    rng = seeded(seed, "distill-eval")
    held: list[Request] = []
    per_group = [n_eval // len(GROUPS) + (i < n_eval % len(GROUPS)) for i in range(len(GROUPS))]
    for group, count in zip(GROUPS, per_group):
        kind, questions = group.split("/")
        pool = {("speech", "train_questions"): SPEECH_QUESTIONS, ("speech", "new_questions"): SPEECH_NEW_QUESTIONS,
                ("image", "train_questions"): IMAGE_QUESTIONS, ("image", "new_questions"): IMAGE_NEW_QUESTIONS}
        made, tries = 0, 0
        while made < count and tries < 200 * count:
            tries += 1
            rid = f"eval-{kind}-{questions.split('_')[0]}-{made:03d}"
            if kind == "speech":
                req = speech_request(rid, group, rng.choice(held_sentences).text, rng.choice(pool[kind, questions]))
            else:
                req = image_request(rid, group, rng.choice(held_scans).fields, rng.choice(SEXES),
                                    rng.choice(AGE_BANDS), rng.choice(pool[kind, questions]))
            if (req.line, req.question) in seen:
                continue
            seen.add((req.line, req.question))
            held.append(req)
            made += 1
    return train, held
