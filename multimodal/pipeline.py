"""The inference pipeline: files and a question in, streamed answer out.

``Assistant`` owns one loaded stack (:class:`~multimodal.config.StackConfig`).
For each request it decodes the inputs (validated, de-identified), asks the
encoders' own heads what they see (Whisper transcript, ImageNet labels, DICOM
metadata) when tools are on, splices projected media tokens when a trained
projector is installed for that modality, and streams the LLM's reply.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Sequence

import torch

from encoders.base import Classifier, Transcriber

from . import grounding
from .backends import Backend, GenerationSettings, text_pieces
from .cancel import stoppable
from .config import StackConfig
from .errors import PromptTooLongError
from .evidence import (
    Evidence,
    classifier_evidence,
    dicom_evidence,
    knowledge_absent,
    knowledge_evidence,
    not_a_scan,
    note_evidence,
    transcript_evidence,
)
from .grounding import Grounding, without_unsupported
from .image_domain import check_domain
from .io.image import is_grayscale
from .io.types import AudioClip, MedicalImage
from .media import MediaBatch, prepare_media
from .model import MedAnyModel
from .prompt import (
    NO_DESCRIPTION,
    SYSTEM_PROMPT,
    classifier_summary,
    dicom_summary,
    domain_summary,
    media_label,
    render_plan,
    transcript_summary,
)
from .template import encode_conversation

__all__ = ["Answer", "AnswerStream", "Assistant", "PromptPlan", "Request", "SYSTEM_PROMPT", "Timings"]

REMOVED_NOTE = "(MedAny removed a sentence that contradicted the evidence shown beside this answer.)"
NOTHING_LEFT = "MedAny could not answer this from the evidence alone. What its tools found:"
NOT_A_SCAN_ANSWER = ("{labels}: MedAny's image check found a photograph, not a radiograph or medical scan, so there is "
                     "no scan to read here.")
MAX_KNOWLEDGE_ROWS = 6


@dataclass
class Timings:
    """Per-request timings in seconds (for benchmarks and ``--verbose``)."""

    inputs_s: float = 0.0
    tools_s: float = 0.0
    first_token_s: float = 0.0
    total_s: float = 0.0
    new_tokens: int = 0
    prompt_tokens: int = 0

    @property
    def tokens_per_s(self) -> float:
        gen = self.total_s - self.first_token_s
        return (self.new_tokens - 1) / gen if self.new_tokens > 1 and gen > 0 else 0.0


@dataclass
class Request:
    """What one turn carries: the question, the decoded media, and the tools the LLM may call."""

    question: str
    images: list[MedicalImage] = field(default_factory=list)
    audios: list[AudioClip] = field(default_factory=list)
    tools: tuple[dict, ...] = ()
    """OpenAI function specs (``{"type": "function", "function": {...}}``) the prompt describes."""


@dataclass
class PlanItem:
    """One medium of a request: its evidence line and whether its projected tokens are spliced in."""

    kind: str
    index: int
    medium: MedicalImage | AudioClip
    evidence: Evidence
    spliced: bool


@dataclass
class PromptPlan:
    """What one prompt says, decided before it is written (:func:`multimodal.prompt.render_plan` writes it)."""

    media: list[PlanItem]
    context: list[Evidence]
    question: str
    correction: str | None = None
    """On a second try: what the first answer contradicted (:meth:`Grounding.correction`)."""
    tools: tuple[dict, ...] = ()
    """Functions the LLM may call (rendered by the chat template: :func:`~multimodal.template.encode_conversation`)."""
    json_schema: dict | None = None
    """When the answer is a JSON value: its schema (:mod:`multimodal.calling`)."""
    answer_language: str | None = None
    """The language the answer is asked in (``"Spanish"``), or None: the question's own."""

    @property
    def evidence(self) -> list[Evidence]:
        return [item.evidence for item in self.media] + list(self.context)


@dataclass
class Answer:
    """The last answer: its text, what it was asked from, and the grounding check of that text."""

    text: str
    request: Request
    plan: PromptPlan
    grounding: Grounding
    draft: str | None = None
    """When the answer was revised: the first answer, which contradicted its evidence."""

    @property
    def evidence(self) -> list[Evidence]:
        return self.plan.evidence

    @property
    def revised(self) -> bool:
        return self.draft is not None


class AnswerStream:
    """One answer as it is generated: iterate it for the text pieces; ``timings`` fill in as it goes and
    ``answer`` (text, evidence, grounding check) is set once it is exhausted."""

    def __init__(self, pieces: Iterator[str], timings: Timings, assistant: "Assistant"):
        self._pieces, self._assistant = pieces, assistant
        self.timings = timings
        self.answer: Answer | None = None

    def __iter__(self) -> "AnswerStream":
        return self

    def __next__(self) -> str:
        try:
            return next(self._pieces)
        except StopIteration:
            self.answer = self._assistant.last_answer
            raise

    def close(self) -> None:
        """Stop generating (an abandoned request)."""
        self._pieces.close()

    def finish(self) -> "AnswerStream":
        """Consume the rest; returns ``self`` with ``answer`` set."""
        for _ in self:
            pass
        return self


def until_stop(pieces: Iterator[str], stop: Sequence[str]) -> Iterator[str]:
    """``pieces`` up to (not including) the first of the ``stop`` texts; a piece that may be the start of one is
    held back until the next shows it is not. Generation stops there (``pieces`` is closed)."""
    if not stop:
        yield from pieces
        return
    held = ""
    try:
        for piece in pieces:
            held += piece
            found = [held.find(s) for s in stop if s in held]
            if found:
                if held[:min(found)]:
                    yield held[:min(found)]
                return
            keep = max((k for s in stop for k in range(1, len(s)) if held.endswith(s[:k])), default=0)
            if len(held) > keep:
                yield held[:len(held) - keep]
                held = held[len(held) - keep:]
        if held:
            yield held
    finally:
        pieces.close()


class Assistant:
    """A loaded MedAny stack. Build with :meth:`load`; call :meth:`stream` or :meth:`answer`."""

    def __init__(self, model: MedAnyModel, config: StackConfig, vision=None, speech=None, info: dict | None = None,
                 backend: Backend | None = None):
        self.model = model
        self.backend = backend
        self.config = config
        self.vision = vision
        self.speech = speech
        self.info = info or {}
        self.last_timings = Timings()
        """The most recent stream's timings (each :class:`AnswerStream` carries its own: prefer those)."""
        self.last_answer: Answer | None = None
        self._knowledge = None
        self._evidence: dict[tuple, Evidence] = {}

    @classmethod
    def load(cls, config: StackConfig | None = None) -> "Assistant":
        """Load every model named in ``config`` (default: the embedded offline stack)."""
        from .stack import StackSpec, build_stack

        config = config or StackConfig()
        stack = build_stack(StackSpec.from_config(config))
        speech = stack.encoders.get("audio")
        if config.speech_backend == "faster-whisper" and speech is not None:
            speech.use_faster_whisper(config.threads)
        assistant = cls(stack.model, config, vision=stack.encoders.get("image"), speech=speech,
                        info=stack.info, backend=stack.backend)
        kb = assistant.knowledge  # opened (or built, once) now, not inside the first request
        if kb is not None:
            m = kb.store.manifest
            assistant.info["knowledge"] = {"path": str(kb.store.path), "entities": m.get("entities"),
                                           "sources": {k: v.get("version") for k, v in m.get("sources", {}).items()},
                                           "embedding": m.get("embedding")}
        return assistant

    @property
    def tokenizer(self):
        return self.backend.tokenizer

    def projects(self, kind: str) -> bool:
        """Whether a trained projector splices ``kind`` (``"image"``/``"audio"``) media into the LLM's input."""
        return kind in self.model.projectors

    # -- request handling -------------------------------------------------

    def plan(self, request: Request, context: Sequence[Evidence | str] = ()) -> PromptPlan:
        """What the prompt will say: each medium's evidence and whether its tokens are spliced, then the context."""
        items = []
        for i, image in enumerate(request.images, 1):
            evidence = self._described("image", i, image)
            items.append(PlanItem("image", i, image, evidence,
                                  self.projects("image") and self.projects_image(image, evidence)))
        notes = [c if isinstance(c, Evidence) else note_evidence("Context", str(c)) for c in context]
        given = any(n.source == "transcript" for n in notes)  # a caller's (corrected) transcript replaces Whisper's
        items += [PlanItem("audio", i, clip, self._described("audio", i, clip, transcribe=not given),
                           self.projects("audio"))
                  for i, clip in enumerate(request.audios, 1)]
        notes += self.knowledge_evidence(request.question, [item.evidence for item in items] + notes,
                                         about_media=bool(items))
        return PromptPlan(items, notes, request.question, tools=request.tools,
                          answer_language=self.answer_language([item.evidence for item in items] + notes))

    def answer_language(self, evidence: Sequence[Evidence]) -> str | None:
        """The language to answer in (``"Spanish"``), or None to let the question's own language decide:
        ``answer_language`` when set, else the language of the first recording not in English."""
        from encoders.languages import check_language, language_name

        chosen = self.config.answer_language
        if chosen and chosen != "auto":
            return language_name(check_language(chosen))
        spoken = [e.facts["language"][0] for e in evidence if e.source == "transcript" and e.facts.get("language")]
        foreign = [code for code in spoken if code != "en"]
        return language_name(foreign[0]) if foreign else None

    def _described(self, kind: str, index: int, medium, transcribe: bool = True) -> Evidence:
        """:meth:`image_evidence` / :meth:`audio_evidence`, once per medium object: an agent's steps, a tool
        decision and the answer after it plan the same request, and Whisper need not hear a recording each time."""
        memo = (id(medium), kind, index, transcribe, self.config.use_tools)
        if memo not in self._evidence:
            self._evidence[memo] = (self.image_evidence(medium, index) if kind == "image"
                                    else self.audio_evidence(medium, index, transcribe=transcribe))
            weakref.finalize(medium, self._evidence.pop, memo, None)  # forgotten with the medium
        return self._evidence[memo]

    def knowledge_evidence(self, question: str, evidence: Sequence[Evidence],
                           about_media: bool = False) -> list[Evidence]:
        """Knowledge-base rows for this request: what the question asks to look up (a code, a drug, a food) and
        the concepts the question and the transcripts name; each an :class:`Evidence` with its citation. A lookup
        that finds nothing says so, unless the question is ``about_media`` ("What food is in this photo?" asks
        the photo, not the knowledge base)."""
        kb = self.knowledge
        if kb is None or not self.config.use_tools:
            return []
        from .knowledge.retrieve import wanted_kinds

        kinds = wanted_kinds(question)
        hits = kb.search(question, k=3) if kinds else []
        spoken = [e.text for e in evidence if e.source == "transcript"]
        linked = kb.link(" \n".join([question, *spoken]), limit=6)
        seen, out = set(), []
        for hit in hits + linked:
            if hit.citation not in seen and len(out) < MAX_KNOWLEDGE_ROWS:
                seen.add(hit.citation)
                out.append(knowledge_evidence(hit))
        if kinds and not about_media and not hits and not any(h.kind in kinds for h in linked):
            out.append(knowledge_absent(kinds))  # asked to look up, found nothing: say it, invent nothing
        return out

    @property
    def knowledge(self):
        """The configured knowledge base (opened, and built when missing, on first use), or None."""
        choice = self.config.knowledge
        if not choice or str(choice).lower() == "none":
            return None
        if self._knowledge is None:
            from .knowledge.build import open_knowledge

            self._knowledge = open_knowledge(None if choice == "bundled" else choice)
        return self._knowledge

    def build_messages(self, request: Request, context: Sequence[Evidence | str] = (),
                       plan: PromptPlan | None = None) -> tuple[list[dict], MediaBatch]:
        """The messages (:func:`~multimodal.prompt.render_plan`) and the spliced media's :class:`MediaBatch`."""
        plan = plan or self.plan(request, context)
        spliced = {kind: [item.medium for item in plan.media if item.kind == kind and item.spliced]
                   for kind in ("image", "audio")}
        encoders = {"image": self.vision, "audio": self.speech}
        return render_plan(plan), prepare_media(self.model, encoders, spliced)

    def encode_plan(self, request: Request, plan: PromptPlan):
        """The prompt's token ids (:class:`~multimodal.template.EncodedPrompt`) and its media features
        ``{kind: [T, D]}``, ready for the backend."""
        with torch.inference_mode():
            messages, batch = self.build_messages(request, plan=plan)
            enc = encode_conversation(self.tokenizer, messages, batch.token_counts, tools=list(plan.tools) or None)
            return enc, self.model.encode_all(batch)

    def projects_image(self, image: MedicalImage, evidence: Evidence | None = None) -> bool:
        """Whether the image projector takes ``image`` (whose ``evidence`` is :meth:`image_evidence`'s).

        A projector whose config says ``"applies_to": "scans"`` (the shipped
        one: trained on DICOM scans only) takes DICOMs and grayscale pictures
        unless the image-domain check found the picture to be no scan; a colour
        photo such as a meal would be out of its domain and is described by its
        evidence line alone.
        """
        cfg = self.info.get("image", {}).get("projector") or {}
        if cfg.get("applies_to", "any") != "scans":
            return True
        if evidence is not None and "photo" in evidence.facts.get("domain", ()):
            return False
        return image.kind == "dicom" or is_grayscale(image.pixels)

    def image_evidence(self, image: MedicalImage, index: int = 1) -> Evidence:
        """What the LLM is told about ``image``: its DICOM header fields, the classifier's labels, or neither.

        An image the domain check finds to be no medical scan (a meal photo given to
        the Clinician) says so first (:mod:`multimodal.image_domain`). With
        ``use_tools`` off nothing an encoder or the header says reaches the prompt.
        """
        label = media_label("image", index)
        if not self.config.use_tools:
            return Evidence("attachment", label, NO_DESCRIPTION)
        found = None
        if image.kind == "dicom":
            meta = image.meta or {}
            found = dicom_evidence(label, dicom_summary(meta), meta)
        elif isinstance(self.vision, Classifier):
            labels = self.vision.classify(image, top_k=3) if self.vision.trained_head else []
            if labels:
                found = classifier_evidence(label, classifier_summary(labels), labels)
        elif self.vision is not None:
            said = self.vision.describe(image)
            if said:
                found = note_evidence(label, classifier_summary(said), source="classifier")
        found = found or Evidence("attachment", label, NO_DESCRIPTION)
        verdict = check_domain(image, self.vision)
        return found if verdict.scan else not_a_scan(found, domain_summary(verdict))

    def audio_evidence(self, clip: AudioClip, index: int = 1, transcribe: bool = True) -> Evidence:
        """What the LLM is told about ``clip``: its duration and Whisper's transcript (or that it is silent).

        ``transcribe=False`` leaves the transcript out (the caller gives one as context).
        """
        from .io.audio import is_audible

        label = media_label("audio", index)
        head = f"recording ({clip.duration_s:.1f} s)"
        if not is_audible(clip.samples):
            return Evidence("attachment", label, f"{head}, silent: no speech was heard")  # Whisper invents words
        if transcribe and self.config.use_tools and isinstance(self.speech, Transcriber):
            heard = self.speech.transcribe(clip, language=self.config.speech_language)
            line = transcript_summary(head, heard.text, heard.language_name, heard.english)
            return transcript_evidence(label, line, heard.english or heard.text, heard.language)
        return Evidence("attachment", label, head)

    def describe_image(self, image: MedicalImage) -> str:
        """The text the LLM reads about ``image`` (:meth:`image_evidence`)."""
        return self.image_evidence(image).text

    def describe_audio(self, clip: AudioClip) -> str:
        """The text the LLM reads about ``clip`` (:meth:`audio_evidence`)."""
        return self.audio_evidence(clip).text

    def stream(self, question: str, images: Sequence = (), audios: Sequence = (), *,
               context: Sequence[Evidence | str] = (), max_new_tokens: int | None = None,
               temperature: float | None = None, should_stop: Callable[[], bool] | None = None,
               tools: Sequence[dict] = (), stop: Sequence[str] = ()) -> "AnswerStream":
        """The answer to ``question`` about the given files/media, piece by piece as it is generated.

        ``context`` adds evidence lines after the media (an edited transcript, a
        meal's nutrient table: :mod:`multimodal.evidence`). ``max_new_tokens``
        and ``temperature`` override this call's generation settings (the
        stack's config is left unchanged); generation ends early once
        ``should_stop()`` is true (checked between tokens). ``tools`` (OpenAI
        function specs) are described in the prompt, as when the model chose to
        answer rather than call one (:mod:`multimodal.calling`); the answer ends
        before the first of the ``stop`` texts it would write. The returned
        :class:`AnswerStream` carries its own :class:`Timings`, and its
        :class:`Answer` (text, evidence, grounding check) once exhausted;
        :meth:`revise` answers again when that check failed.
        """
        timings = self.last_timings = Timings()
        return AnswerStream(self._stream(question, images, audios, context, max_new_tokens, temperature,
                                         should_stop, timings, tuple(tools), tuple(stop)), timings, self)

    def request(self, question: str, images: Sequence = (), audios: Sequence = (),
                tools: Sequence[dict] = ()) -> Request:
        """A :class:`Request` with its media decoded (paths and bytes through :mod:`multimodal.io`)."""
        from .io import load_audio, load_image

        return Request(question, [im if isinstance(im, MedicalImage) else load_image(im) for im in images],
                       [a if isinstance(a, AudioClip) else load_audio(a) for a in audios], tuple(tools))

    def _stream(self, question, images, audios, context, max_new_tokens, temperature, should_stop,
                timings: Timings, tools: tuple = (), stop: tuple = ()) -> Iterator[str]:
        t0 = time.perf_counter()
        request = self.request(question, images, audios, tools)
        timings.inputs_s = time.perf_counter() - t0
        with stoppable(should_stop):  # the deadline reaches transcription and prefill (multimodal.cancel)
            with torch.inference_mode():
                plan = self.plan(request, context)
            yield from self._generate(request, plan, timings, t0, max_new_tokens, temperature, should_stop, stop)

    def _generate(self, request: Request, plan: PromptPlan, timings: Timings, t0: float, max_new_tokens,
                  temperature, should_stop, stop: Sequence[str] = ()) -> Iterator[str]:
        enc, media = self.encode_plan(request, plan)
        timings.tools_s = time.perf_counter() - t0 - timings.inputs_s
        timings.prompt_tokens = int(enc.input_ids.numel())
        settings = self.generation_settings(max_new_tokens, temperature)
        if timings.prompt_tokens + settings.max_new_tokens > self.backend.context_length:
            raise PromptTooLongError.of(timings.prompt_tokens, settings.max_new_tokens, self.backend.context_length)

        def counted(ids):
            for token in ids:
                timings.new_tokens += 1
                if timings.new_tokens == 1:
                    timings.first_token_s = time.perf_counter() - t0
                yield token

        text = ""
        pieces = text_pieces(self.tokenizer, counted(self.backend.generate_ids(enc.input_ids, media, settings,
                                                                               should_stop)))
        for piece in until_stop(pieces, stop):
            text += piece
            yield piece
        cite = grounding.citation_suffix(text.strip(), plan.evidence)  # a code from a row is cited, not just written
        if cite:
            text = text.rstrip() + cite
            yield cite
        timings.total_s = time.perf_counter() - t0
        self.last_answer = Answer(text.strip(), request, plan, grounding.check(text, plan.evidence, plan.question))

    def respond(self, question: str, images: Sequence = (), audios: Sequence = (), *, guard: bool = True,
                **generate) -> "AnswerStream":
        """The whole answer, held to its evidence: the finished stream (``.answer.text`` is what to show).

        With ``guard`` an answer the grounding check flags is answered again
        (:meth:`revise`); the result is then that second stream (``.answer.draft``
        keeps the first). ``generate`` as in :meth:`stream`.
        """
        done = self.stream(question, images, audios, **generate).finish()
        if guard and not done.answer.grounding.ok:
            generate.pop("context", None)
            done = self.revise(**generate).finish()
        return done

    def answer(self, question: str, images: Sequence = (), audios: Sequence = (), *, guard: bool = True,
               **generate) -> str:
        """The whole answer as one string, held to its evidence (:meth:`respond`)."""
        return self.respond(question, images, audios, guard=guard, **generate).answer.text

    def revise(self, **generate) -> "AnswerStream":
        """Answer :attr:`last_answer`'s request again, told what its draft contradicted.

        The new answer is checked too; should it still contradict its evidence,
        its :class:`Answer` keeps it without the contradicting sentences and says
        so (``answer.text``: what to show).
        """
        timings = self.last_timings = Timings()
        return AnswerStream(self._revise(timings, **generate), timings, self)

    def _revise(self, timings: Timings, **generate) -> Iterator[str]:
        draft = self.last_answer
        t0 = time.perf_counter()
        plan = replace(draft.plan, correction=draft.grounding.correction())
        with stoppable(generate.get("should_stop")):
            yield from self._generate(draft.request, plan, timings, t0, generate.get("max_new_tokens"),
                                      generate.get("temperature"), generate.get("should_stop"),
                                      generate.get("stop", ()))
        second = self.last_answer
        text = second.text
        if not second.grounding.ok:
            kept = without_unsupported(text, second.grounding).strip()
            if not kept:  # nothing grounded is left: say what the evidence says, which cannot contradict it
                kept = "\n".join([NOTHING_LEFT] + [f"- {e.line}" for e in second.evidence])
            if any(i.kind == "domain" for i in second.grounding.issues):  # still not said: MedAny says it
                photos = [e.label for e in second.evidence if "photo" in e.facts.get("domain", ())]
                kept = f"{NOT_A_SCAN_ANSWER.format(labels=' and '.join(photos))}\n\n{kept}"
            text = f"{kept}\n\n{REMOVED_NOTE}"
        self.last_answer = replace(second, text=text, draft=draft.text)

    def check_question(self, question: str, max_new_tokens: int | None = None) -> None:
        """Refuse a question that alone, with the answer's budget, would not fit the LLM's context.

        Cheap enough to run before a request waits in a queue (a character count first,
        then the tokenizer); the exact check, media and tool lines included, runs
        when the prompt is built.
        """
        budget = self.generation_settings(max_new_tokens).max_new_tokens
        context = self.backend.context_length
        if len(question) > 16 * context:  # no tokenizer packs 16 characters of text into one token
            raise PromptTooLongError.of(len(question) // 16, budget, context)
        n = len(self.tokenizer(question, add_special_tokens=False)["input_ids"])
        if n + budget > context:
            raise PromptTooLongError.of(n, budget, context)

    def generation_settings(self, max_new_tokens: int | None = None,
                            temperature: float | None = None) -> GenerationSettings:
        """The config's generation settings with this call's overrides."""
        cfg = self.config
        return GenerationSettings(max_new_tokens=max_new_tokens or cfg.max_new_tokens,
                                  temperature=cfg.temperature if temperature is None else temperature,
                                  repetition_penalty=cfg.repetition_penalty)
