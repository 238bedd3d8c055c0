"""A structured report: Technique from the header, Findings, Impression and Limitations by the LLM under a schema.

The LLM writes one JSON object (:func:`report_schema`, constrained decoding:
:func:`multimodal.calling.json_answer`, as the consult note's SOAP sections), so
every section is present. Its ``technique`` is an enum of one value, the
header's sentences (:mod:`.technique`): MedAny writes it, the model never does,
and the model reads it before it writes the rest. Each generated sentence is held
to the evidence by the grounding check; Findings and Impression sentences are
checked as claims about the study (a report states what it says the study
shows), so a finding no evidence gives ("no acute disease", "a mass") is a
contradiction; so is a sex or an age the header contradicts (:func:`demographics`).
A draft that contradicts its evidence is written again once, told what it
contradicted; what still contradicts is dropped and the report says so.
A section left empty gets MedAny's own sentence, and Limitations always end with
what no model did and the research-use disclaimer.
"""

from __future__ import annotations

import re
from typing import Sequence

from ..grounding import Grounding, Issue, check, sentences
from ..prompt import media_label, report_question
from .document import DISCLAIMER, SECTIONS, ImagingReport, Sentence, Tie
from .study import StudyImage
from .technique import technique
from .ties import AGE, SEX_WORDS, in_band, ties

GENERATED = ("findings", "impression", "limitations")
CLAIM = "The study shows: "
"""Put before a Findings or Impression sentence for the grounding check: a report's findings are claims."""
NO_READER = ("No validated medical model has read the image pixels: the findings restate the header and MedAny's "
             "tools, and the images need a qualified reader.")
FALLBACK = {"findings": "No finding is stated: the evidence gives none, and no model has read the image pixels.",
            "impression": "No impression can be drawn from the header alone; a qualified reader must review the "
                          "images."}
NOT_A_SCAN = ("{label}: MedAny's image check found a photograph, not a radiograph or medical scan, so there is no "
              "scan to read in it.")


def report_schema(technique_text: str, max_chars: int = 200) -> dict:
    """The JSON schema of a report: the four sections, all required; ``technique`` is the header's text."""
    props = {"technique": {"enum": [technique_text]}}  # a one-value choice: written by MedAny, no LLM step
    props |= {k: {"type": "string", "minLength": 1, "maxLength": max_chars} for k in GENERATED}
    return {"type": "object", "required": list(SECTIONS), "properties": props}


def generate_report(assistant, images: Sequence[StudyImage], question: str = "",
                    max_chars: int | None = None) -> ImagingReport:
    """The report of ``images`` (:func:`~multimodal.report.study.read_study`) for the clinician's ``question``.

    ``max_chars`` bounds each generated section (default: the stack's ``max_new_tokens``, 16 to 200).
    """
    from ..calling import json_answer
    from ..structured import MAX_STRING_CHARS

    if max_chars is None:
        max_chars = min(MAX_STRING_CHARS, max(16, assistant.config.max_new_tokens))
    labels = [media_label("image", i) for i in range(1, len(images) + 1)]
    report = ImagingReport(question=" ".join(question.split()), images=[dict(s.image.meta or {}) for s in images],
                           study=[s.ref(label) for label, s in zip(labels, images)], models=_models(assistant))
    report.technique = [s for label, im in zip(labels, images) for s in technique(label, im.image)]
    schema = report_schema(" ".join(s.text for s in report.technique), max_chars)
    request = assistant.request(report_question(question), [s.image for s in images])
    value, answer, *_ = json_answer(assistant, request, schema)
    kept, issues = _held(_cut(value, max_chars), answer.plan.evidence, report.images)
    drafts, first = 1, issues
    if issues:
        value, answer, *_ = json_answer(assistant, request, schema, correction=Grounding(issues).correction())
        kept, issues = _held(_cut(value, max_chars), answer.plan.evidence, report.images)
        drafts = 2
    evidence = answer.plan.evidence
    report.evidence = [e.as_dict() for e in evidence]
    removed = list(dict.fromkeys(i.sentence for i in issues))
    rounds = [first, issues][:drafts]
    report.checks = {"drafts": drafts, "removed": removed, "issues": [Grounding(list(r)).as_dict()["issues"]
                                                                      for r in rounds]}
    for name in GENERATED:
        report.section(name).extend(Sentence(s, ties(s, evidence, report.images)) for s in kept[name])
    photos = [e for e in evidence if "photo" in e.facts.get("domain", ())]
    report.findings[:0] = [Sentence(NOT_A_SCAN.format(label=e.label), [Tie(e.source, e.label, "line", e.text)],
                                    "medany") for e in photos]
    for name, text in FALLBACK.items():
        if not report.section(name):
            report.section(name).append(Sentence(text, [Tie("medany", "MedAny", "rule", "no evidence states a "
                                                            "finding")], "medany"))
    report.limitations += _limitations(assistant, report, len(removed))
    return report


def demographics(sentence: str, images: Sequence[dict]) -> list[Issue]:
    """What the grounding check does not read: a sex or an age the de-identified headers contradict ("a 45-year-old
    man" of a film whose header gives sex F, age band 60-69). Only where a header states them."""
    issues = []
    sexes = {m.get("sex") for m in images if m.get("sex") in SEX_WORDS}
    for sex, pattern in SEX_WORDS.items():
        said = re.search(pattern, sentence, re.IGNORECASE)
        if sexes and sex not in sexes and said:
            issues.append(Issue("sex", said.group(), tuple(sorted(sexes)), sentence))
    bands = [m["age_band"] for m in images if m.get("age_band")]
    for said in AGE.finditer(sentence):
        age = int(said.group(1) or said.group(2))
        if bands and not any(in_band(age, band) for band in bands):
            issues.append(Issue("age", said.group().strip(), tuple(bands), sentence))
    return issues


def _cut(value: dict, max_chars: int) -> dict:
    """Each generated section cut by its length limit back to its last whole sentence (as the SOAP note's)."""
    from ..consult_note import _whole

    return {name: _whole(str(value.get(name, "")), max_chars) for name in GENERATED}


def _held(value: dict, evidence, images: Sequence[dict] = ()) -> tuple[dict[str, list[str]], list[Issue]]:
    """Per generated section, its sentences that keep to the evidence; and the issues of the others (each issue's
    ``sentence`` is the section's own sentence)."""
    kept: dict[str, list[str]] = {name: [] for name in GENERATED}
    issues: list[Issue] = []
    for name in GENERATED:
        for s in sentences(str(value.get(name, ""))):
            found = check(CLAIM + s if name != "limitations" else s, evidence).issues + demographics(s, images)
            if found:
                issues += [Issue(i.kind, i.said, i.expected, s) for i in found]
            else:
                kept[name].append(s)
    return kept, issues


def _limitations(assistant, report: ImagingReport, removed: int) -> list[Sentence]:
    """MedAny's own Limitations: what no model did, a header's burned-in text, removed sentences, the disclaimer."""
    reader = "image projector " + ("trained (research weights)" if assistant.projects("image") else "none")
    out = [Sentence(NO_READER, [Tie("medany", "MedAny", "stack", reader)], "medany")]
    for ref, meta in zip(report.study, report.images):
        if meta.get("burned_in_annotation"):
            out.append(Sentence(f"{ref.label}: the header says text is burned into the pixels; it may identify the "
                                "patient and was not removed.", [Tie("dicom", ref.label, "BurnedInAnnotation",
                                                                     "YES")], "medany"))
    if removed:
        out.append(Sentence(f"MedAny removed {removed} generated sentence{'s' if removed != 1 else ''} that "
                            "contradicted the evidence.", [Tie("medany", "MedAny", "grounding",
                                                               f"{removed} removed")], "medany"))
    out.append(Sentence(DISCLAIMER, [Tie("medany", "MedAny", "disclaimer", "research use only")], "medany"))
    return out


def _models(assistant) -> dict[str, str]:
    cfg = assistant.config
    names = {"llm": cfg.llm}
    names |= {k: v for k, v in (("vision", cfg.vision), ("speech", cfg.speech)) if v}
    names |= {f"{kind} projector": "trained" for kind in ("image", "audio") if assistant.projects(kind)}
    return names
