"""``medany agent``: the LLM answers through tools, in a bounded loop.

Each step the model decides, under constraint (:mod:`multimodal.calling`), whether
to call one of the built-in tools (:mod:`multimodal.tools.builtin`) and with which
arguments; MedAny runs the call and adds the result as an evidence line
(``Tool nutrient_lookup: [USDA FDC 173944] banana, 150 g: 133.5 kcal, ...``). The
loop ends when the model answers instead, asks only for what it already has, or
runs out of steps or time; then it answers from everything found, held to that
evidence like any answer (revised once when it contradicts it).

Every step is logged (tool name, argument names, seconds, result count; never
argument values or results, which carry patient data) and returned to the caller.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Sequence

from .calling import call_tools, function_specs
from .cancel import Cancelled, stoppable
from .evidence import Evidence, tool_evidence
from .tools import builtin  # noqa: F401  (registers the built-in tools)
from .tools.registry import TOOLS, ToolContext, ToolError, describe_result

log = logging.getLogger("medany.agent")

MAX_STEPS = 6
MAX_SECONDS = 180.0


@dataclass
class Step:
    """One tool call: what was called with what, what it found, how long it took."""

    tool: str
    arguments: dict
    result: dict
    seconds: float

    @property
    def line(self) -> str:
        return f"{self.tool}({json.dumps(self.arguments, ensure_ascii=False)}) -> {describe_result(self.result)}"


@dataclass
class AgentRun:
    """An agent's answer (:class:`~multimodal.pipeline.AnswerStream`, finished), its steps and why it stopped."""

    done: object
    steps: list[Step] = field(default_factory=list)
    stopped: str = "answered"
    """``answered`` (the model chose to answer), ``repeated``, ``max_steps`` or ``max_seconds``."""
    seconds: float = 0.0
    prompt_tokens: int = 0
    """Tokens read, over every decision and the answer (a cached prefix counts each time: the cost, not the work)."""
    completion_tokens: int = 0
    """Tokens written: tool calls and the answer."""


def run_agent(assistant, question: str, images: Sequence = (), audios: Sequence = (), *,
              tools: Sequence[str] | None = None, max_steps: int = MAX_STEPS,
              max_seconds: float = MAX_SECONDS, on_step=None) -> AgentRun:
    """Answer ``question`` (about decoded ``images``/``audios``) through ``tools`` (names; default all built-in).

    ``on_step(step)`` is called after every tool call (the CLI prints it).
    """
    t0 = time.monotonic()
    deadline = t0 + max_seconds
    names = list(tools) if tools is not None else list(TOOLS)
    unknown = [n for n in names if n not in TOOLS]
    if unknown:
        raise ToolError(f"Unknown tool(s): {', '.join(unknown)}; known: {', '.join(TOOLS)}.")
    specs = function_specs([TOOLS[n].openai() for n in names])
    request = assistant.request(question, images, audios, specs)
    context = ToolContext(knowledge=assistant.knowledge, speech=assistant.speech, images=request.images,
                          audios=request.audios)
    evidence: list[Evidence] = []
    run = AgentRun(done=None)
    seen: set[str] = set()
    while True:
        if len(run.steps) >= max_steps:
            run.stopped = "max_steps"
            break
        try:
            with stoppable(lambda: time.monotonic() > deadline):
                called = call_tools(assistant, request, evidence, "auto")
        except Cancelled:
            run.stopped = "max_seconds"
            break
        run.prompt_tokens += called.prompt_tokens
        run.completion_tokens += called.completion_tokens
        if not called.calls:
            break
        fresh = [c for c in called.calls if _key(c) not in seen][:max_steps - len(run.steps)]
        if not fresh:
            run.stopped = "repeated"
            break
        for call in fresh:
            seen.add(_key(call))
            step = _run(call, context)
            run.steps.append(step)
            evidence.append(tool_evidence(call.name, describe_result(step.result)))
            log.info("agent step %d: %s(%s) %.2f s, %d result(s)%s", len(run.steps), call.name,
                     ", ".join(sorted(call.arguments)), step.seconds, len(step.result.get("results", [])),
                     ", error" if "error" in step.result else "")
            if on_step:
                on_step(step)
        if time.monotonic() > deadline:
            run.stopped = "max_seconds"
            break
    run.done = assistant.respond(question, request.images, request.audios, context=evidence, guard=True)
    run.prompt_tokens += run.done.timings.prompt_tokens
    run.completion_tokens += run.done.timings.new_tokens
    run.seconds = time.monotonic() - t0
    log.info("agent answered after %d step(s) in %.1f s (%s)", len(run.steps), run.seconds, run.stopped)
    return run


def _key(call) -> str:
    return call.name + json.dumps(call.arguments, sort_keys=True)


def _run(call, context: ToolContext) -> Step:
    t = time.perf_counter()
    try:
        result = TOOLS[call.name].call(call.arguments, context)
    except ToolError as exc:  # the model learns what was wrong; the loop goes on
        result = {"error": str(exc)}
    return Step(call.name, call.arguments, result, time.perf_counter() - t)
