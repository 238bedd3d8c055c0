"""A conversation exported as a structured report: Markdown for people, JSON for systems.

The report carries only what the page shows: the de-identified image metadata,
the questions and answers, optional tables (a meal's nutrients, a transcript),
the knowledge-base rows the answers cite, the models that answered, and the
research-use disclaimer. File names of the
uploads are never included (they often hold a patient's name).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from multimodal.report.document import DISCLAIMER  # one text for every export

SCHEMA = "medany.report/v1"


@dataclass
class Report:
    """One workspace's session, ready to export.

    Attributes:
        workspace: ``clinician``, ``dietitian`` or ``consult``.
        turns: ``[{"role": "user"|"assistant", "content": str}]`` in order.
        images: de-identified metadata of each image, in study order.
        tables: named tables, each ``{"headers": [...], "rows": [[...]]}``.
        models: which models answered (names only).
        sources: the knowledge-base row of every citation the answers write (:meth:`cite`).
        explanations: why an answer (:meth:`multimodal.explain.Explanation.as_dict`, with its maps as base64
            PNG under ``png``).
        created: ISO-8601 UTC timestamp.
    """

    workspace: str
    turns: list[dict] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    tables: dict[str, dict] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    sources: list[dict] = field(default_factory=list)
    explanations: list[dict] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).replace(microsecond=0).isoformat())
    disclaimer: str = DISCLAIMER

    def cite(self, knowledge) -> "Report":
        """Fill :attr:`sources` with the row of every ``[citation]`` in the answers (``knowledge``: a
        :class:`~multimodal.knowledge.retrieve.KnowledgeBase`, or None when the assistant runs without one)."""
        from multimodal.grounding import citations_in

        if knowledge is not None:
            said = " ".join(t.get("content", "") for t in self.turns if t.get("role") == "assistant")
            self.sources = [hit.as_dict() for c in citations_in(said) if (hit := knowledge.get(c)) is not None]
        return self

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **asdict(self)}

    def to_json(self) -> str:
        """The report as indented JSON (``schema`` first)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=_jsonable)

    def to_markdown(self) -> str:
        """The report as Markdown: header, disclaimer, images, tables, conversation."""
        out = [f"# MedAny {self.workspace} report", "", f"*{self.created}*", "", f"> **{self.disclaimer}**", ""]
        if self.models:
            out += ["## Models", ""] + [f"- {k}: `{v}`" for k, v in self.models.items()] + [""]
        if self.images:
            out += ["## Images", ""]
            for i, meta in enumerate(self.images, 1):
                out.append(f"- Image {i}: " + (_meta_line(meta) or "no metadata"))
            out.append("")
        for name, table in self.tables.items():
            out += [f"## {name}", "", _md_table(table.get("headers", []), table.get("rows", [])), ""]
        if self.turns:
            out += ["## Conversation", ""]
            for turn in self.turns:
                who = "Question" if turn.get("role") == "user" else "MedAny"
                out += [f"**{who}:**", "", str(turn.get("content", "")).strip(), ""]
        for why in self.explanations:
            out += [f"## Why (image {why.get('image')})", "", why.get("caveat", ""), ""]
            maps = [m["title"] for m in (why.get("classifier"), why.get("answer_map")) if m]
            out += [f"- {title} (PNG in the JSON report)" for title in maps] + ([""] if maps else [])
            rows = [[f["part"], f["text"], f"{f['delta_logprob']:+.3f}"] for f in why.get("facts", [])]
            if rows:
                out += [_md_table(["Prompt part", "Value", "Answer log-probability lost without it"], rows), ""]
        if self.sources:
            out += ["## Sources", ""] + [f"- [{r['citation']}] {r['name']}" + (f" ({r['detail']})" if r.get("detail")
                                                                               else "") for r in self.sources] + [""]
        return "\n".join(out).rstrip() + "\n"

    def write(self, directory: str | Path | None = None, stem: str | None = None) -> tuple[Path, Path]:
        """Write ``.md`` and ``.json`` files into ``directory`` (a fresh temp dir by default)."""
        directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="medany-report-"))
        directory.mkdir(parents=True, exist_ok=True)
        stem = stem or self.stem()
        md, js = directory / f"{stem}.md", directory / f"{stem}.json"
        for path, text in ((md, self.to_markdown()), (js, self.to_json())):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the question text is patient data
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        return md, js

    def stem(self) -> str:
        return f"medany-{self.workspace}-{self.created.replace(':', '').replace('+0000', 'Z')[:17]}"

    def export(self, private, session: str | None) -> list[str]:
        """Write ``.md`` and ``.json`` into the session's private folder (:class:`demos.private.PrivateFiles`)."""
        stem = self.stem()
        return [str(private.write_text(session, f"{stem}.md", self.to_markdown())),
                str(private.write_text(session, f"{stem}.json", self.to_json()))]


def history_to_turns(history) -> list[dict]:
    """Gradio chat history (messages format) -> plain ``{"role", "content"}`` turns with text only."""
    turns = []
    for message in history or []:
        role = message.get("role") if isinstance(message, dict) else getattr(message, "role", None)
        content = message.get("content") if isinstance(message, dict) else getattr(message, "content", None)
        if isinstance(content, list):  # multimodal content blocks: keep the text parts
            content = " ".join(str(c.get("text", "")) if isinstance(c, dict) else str(c) for c in content)
        if role in ("user", "assistant") and content is not None:
            turns.append({"role": role, "content": str(content)})
    return turns


_META_LABELS = (("modality", "modality"), ("body_part", "body part"), ("view", "view"),
                ("laterality", "laterality"), ("age_band", "age"), ("sex", "sex"))


def _meta_line(meta: dict) -> str:
    parts = [f"{label} {meta[key]}" for key, label in _META_LABELS if meta.get(key)]
    if meta.get("rows") and meta.get("cols"):
        parts.append(f"{meta['rows']} x {meta['cols']} px")
    if meta.get("spacing_mm"):
        row, col = meta["spacing_mm"]
        parts.append(f"pixel spacing {row:g} x {col:g} mm")
    return ", ".join(parts)


def _md_cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list, rows: list) -> str:
    if not headers:
        return ""
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
