"""A consult by a team: a coordinator routes a case to role agents, then merges their findings into one cited answer.

Each role (:data:`ROLES`) has its own tools and its own brief:

- **radiology**: a DICOM study; reads its de-identified header, codes what the question names;
- **nutrition**: a meal photo, or a food the question or the patient names; nutrients per portion;
- **pharmacy**: a medicine the question or the patient names; its generic name and ids;
- **clinical**: what the patient says (a recording) or the symptoms the question names; phenotypes and codes.

Routing is the coordinator's reading of the case, not a guess: what is attached (a
DICOM, a photo, a recording) and what the knowledge base links in the question and the
transcripts (a drug, a food, a symptom); each role is given with the reason it was called.
Each routed role answers its brief through its tools (:func:`multimodal.agent.run_agent`,
held to its own evidence); the coordinator then answers the question from every role's
tool results and checked finding, held to all of them. Per role the run records steps,
tokens and seconds (logged without patient data: names and numbers only).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Sequence

from .agent import MAX_SECONDS, AgentRun, run_agent
from .evidence import Evidence, note_evidence

log = logging.getLogger("medany.team")


@dataclass(frozen=True)
class Role:
    name: str
    tools: tuple[str, ...]
    brief: str
    """What the role is asked, after the question."""


ROLES = {r.name: r for r in (
    Role("radiology", ("dicom_metadata", "icd10_lookup"),
         "As the team's radiology assistant: say what the study's header states (modality, body part, view) and "
         "what the clinician should check; no one has read the pixels."),
    Role("nutrition", ("nutrient_lookup",),
         "As the team's dietitian: name the foods and give their nutrients for the portion, from the table."),
    Role("pharmacy", ("drug_lookup",),
         "As the team's pharmacist: identify each medicine named, with its generic name and ids."),
    Role("clinical", ("phenotype_lookup", "icd10_lookup"),
         "As the team's clinician: name the patient's symptoms and how long they have lasted, with their terms."),
)}
_KIND_ROLE = {"drug": "pharmacy", "food": "nutrition", "phenotype": "clinical", "diagnosis": "clinical"}
_SOURCE_ROLE = {"dicom": "radiology", "classifier": "nutrition", "transcript": "clinical"}


@dataclass
class RoleRun:
    """One role's part: why it was called, its agent run, and what it cost."""

    role: Role
    reason: str
    run: AgentRun

    @property
    def finding(self) -> str:
        return self.run.done.answer.text


@dataclass
class TeamRun:
    """The team's answer (a finished :class:`~multimodal.pipeline.AnswerStream`) and each role's part."""

    done: object
    roles: list[RoleRun] = field(default_factory=list)
    seconds: float = 0.0
    merge_seconds: float = 0.0


def route(assistant, request) -> list[tuple[Role, str]]:
    """The roles this case needs, each with the reason (in :data:`ROLES` order); the clinician when nothing else."""
    plan = assistant.plan(request)
    reasons: dict[str, str] = {}
    for e in plan.media:
        name = _SOURCE_ROLE.get(e.evidence.source)
        if name:
            what = {"dicom": "is a DICOM study", "classifier": "is a photo", "transcript": "records the patient"}
            reasons.setdefault(name, f"{e.evidence.label} {what[e.evidence.source]}")
    kb = assistant.knowledge
    if kb is not None:
        spoken = [e.text for e in plan.evidence if e.source == "transcript"]
        for hit in kb.link(" \n".join([request.question, *spoken]), limit=12):
            name = _KIND_ROLE.get(hit.kind)
            if name:
                reasons.setdefault(name, f'the case names "{hit.mention}" ({hit.kind})')
    chosen = [(role, reasons[name]) for name, role in ROLES.items() if name in reasons]
    return chosen or [(ROLES["clinical"], "nothing attached or named: the question alone")]


def run_team(assistant, question: str, images: Sequence = (), audios: Sequence = (), *, max_steps: int = 3,
             max_seconds: float = MAX_SECONDS, on_role=None) -> TeamRun:
    """Route ``question`` (about decoded media) to its roles, run each, and answer from all their findings.

    ``max_steps`` and ``max_seconds`` bound each role's agent loop; ``on_role(role_run)`` is called as each ends.
    """
    t0 = time.monotonic()
    request = assistant.request(question, images, audios)
    team = TeamRun(done=None)
    for role, reason in route(assistant, request):
        run = run_agent(assistant, f"{question}\n({role.brief})", request.images, request.audios, tools=role.tools,
                        max_steps=max_steps, max_seconds=max_seconds)
        part = RoleRun(role, reason, run)
        team.roles.append(part)
        log.info("team role %s: %d step(s), %d prompt + %d generated tokens, %.1f s (%s)", role.name, len(run.steps),
                 run.prompt_tokens, run.completion_tokens, run.seconds, run.stopped)
        if on_role:
            on_role(part)
    t1 = time.monotonic()
    team.done = assistant.respond(question, request.images, request.audios, context=merged(team.roles), guard=True)
    team.merge_seconds = time.monotonic() - t1
    team.seconds = time.monotonic() - t0
    log.info("team answered with %d role(s) in %.1f s", len(team.roles), team.seconds)
    return team


def merged(parts: Sequence[RoleRun]) -> list[Evidence]:
    """What the coordinator answers from: every role's tool results, then each role's checked finding."""
    tools = [e for p in parts for e in p.run.done.answer.evidence if e.source == "tool"]
    findings = [note_evidence(f"{p.role.name.capitalize()} finding", p.finding, source="finding") for p in parts]
    return list({e.line: e for e in tools}.values()) + findings
