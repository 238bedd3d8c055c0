"""Helpers for the report tests: the tiny stack answering scripted report JSON."""

from __future__ import annotations

import json


def json_script(first: dict, corrected: dict | None = None):
    """A script for :func:`tests.scripted.scripted`: the model "wants" to write the report object with the
    sections of ``first`` (of ``corrected`` once told what its draft contradicted); the technique is the one the
    schema in the prompt fixes."""

    def script(prompt: str) -> list[str]:
        at = prompt.rindex("JSON schema: ") + len("JSON schema: ")
        schema, _ = json.JSONDecoder().raw_decode(prompt[at:])
        sections = corrected if corrected is not None and "Correction:" in prompt else first
        return [json.dumps({"technique": schema["properties"]["technique"]["enum"][0], **sections},
                           ensure_ascii=False)]

    return script


def scripted_reporter(assistant, first: dict, corrected: dict | None = None):
    """``assistant``'s models answering with :func:`json_script`; sections may be 200 characters long (the tiny
    stack's own budget of a few tokens would cut every sentence)."""
    from dataclasses import replace

    from tests.scripted import scripted

    reporter = scripted(assistant, json_script(first, corrected))
    reporter.config = replace(assistant.config, max_new_tokens=200)
    return reporter
