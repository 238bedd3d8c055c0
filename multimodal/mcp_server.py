"""``medany mcp``: MedAny's built-in tools as a Model Context Protocol server, for other agents.

The knowledge tools (``icd10_lookup``, ``phenotype_lookup``, ``drug_lookup``,
``nutrient_lookup``) are always offered, with the JSON schemas and checks of
:mod:`multimodal.tools.registry`. The media tools (``dicom_metadata``,
``transcribe``) read a file, so they are offered only for folders the operator
names (``--allow-files DIR``): their argument is then a ``path`` inside one of
those folders, read with MedAny's input limits; nothing outside is opened.

Results come back as JSON text and as structured content; a wrong call (unknown
tool, arguments that do not fit, a path outside the folders) is an error result that
names the problem, never a traceback. Transports: stdio (default, what desktop
agents launch) or streamable HTTP on loopback.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

from .errors import InputError, require
from .tools import builtin  # noqa: F401  (registers the built-in tools)
from .tools.registry import TOOLS, Tool, ToolContext, ToolError

log = logging.getLogger("medany.mcp")

KNOWLEDGE_TOOLS = ("icd10_lookup", "phenotype_lookup", "drug_lookup", "nutrient_lookup")
MEDIA_TOOLS = {"dicom_metadata": "image", "transcribe": "audio"}
PATH_SCHEMA = {"type": "object", "required": ["path"], "additionalProperties": False,
               "properties": {"path": {"type": "string", "description": "the file, inside a folder this server "
                                                                        "was allowed to read"}}}


class McpTools:
    """The tools one MCP server offers, and how it runs them (independent of the ``mcp`` package: testable)."""

    def __init__(self, knowledge, allow_files: Sequence[str | Path] = (), speech: str | None = "whisper:tiny.en",
                 limits=None):
        from .io import InputLimits

        self.knowledge, self.allowed = knowledge, [Path(p).resolve() for p in allow_files]
        self.speech_name, self._speech = speech, None
        self.limits = limits or InputLimits()

    def offered(self) -> list[dict]:
        """``[{"name", "description", "input_schema"}]`` of every tool this server offers."""
        out = [_describe(TOOLS[n], TOOLS[n].parameters) for n in KNOWLEDGE_TOOLS]
        if self.allowed:
            note = f" Give the file's path (inside the {len(self.allowed)} folder(s) this server may read)."
            out += [_describe(TOOLS[name], PATH_SCHEMA, note) for name in MEDIA_TOOLS]
        return out

    def call(self, name: str, arguments: dict | None) -> dict:
        """Run tool ``name``; raises :class:`ToolError` / :class:`InputError` naming what was wrong."""
        if name in KNOWLEDGE_TOOLS:
            return TOOLS[name].call(arguments or {}, ToolContext(knowledge=self.knowledge))
        if name in MEDIA_TOOLS and self.allowed:
            args = arguments or {}
            if set(args) != {"path"} or not isinstance(args["path"], str):
                raise ToolError(f"{name} takes one argument, path (a string).")
            medium = self._read(args["path"], MEDIA_TOOLS[name])
            if name == "dicom_metadata":
                return TOOLS[name].call({}, ToolContext(images=[medium]))
            return TOOLS[name].call({}, ToolContext(speech=self.speech(), audios=[medium]))
        raise ToolError(f"Unknown tool {name!r}; this server offers {', '.join(t['name'] for t in self.offered())}.")

    def _read(self, path: str, kind: str):
        from .io import load_audio, load_image

        resolved = Path(path).resolve()
        if not any(resolved.is_relative_to(d) for d in self.allowed):
            raise ToolError("That file is outside the folders this server may read.")
        return load_image(resolved, limits=self.limits) if kind == "image" else load_audio(resolved, limits=self.limits)

    def speech(self):
        if self._speech is None and self.speech_name:
            from encoders.registry import create_encoder

            self._speech = create_encoder(self.speech_name)
        return self._speech


def _describe(t: Tool, schema: dict, extra: str = "") -> dict:
    return {"name": t.name, "description": t.description + extra, "input_schema": schema}


def build_server(tools: McpTools):
    """The ``mcp`` low-level server around ``tools``."""
    require("mcp", "all")
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel import Server

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(**t) for t in tools.offered()])

    async def call_tool(ctx, params) -> types.CallToolResult:
        try:
            result = await anyio.to_thread.run_sync(tools.call, params.name, params.arguments)
        except (ToolError, InputError) as exc:
            log.info("mcp call %s refused: %s", params.name[:64], type(exc).__name__)
            return types.CallToolResult(content=[types.TextContent(type="text", text=str(exc))], is_error=True)
        log.info("mcp call %s: %d result(s)", params.name, len(result.get("results", [])))
        return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(result))],
                                    structured_content=result)

    return Server("medany", version=_version(), instructions="Medical lookups with citations: ICD-10-CM codes, "
                  "HPO phenotypes and their diseases, drugs with DrugBank ids, food nutrients per portion.",
                  on_list_tools=list_tools, on_call_tool=call_tool)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medany")
    except PackageNotFoundError:
        return "0"


def command(transport: str = "stdio", port: int = 8765, allow_files: Sequence[str] = (), knowledge: str = "bundled",
            speech: str = "whisper:tiny.en") -> int:
    """Serve MedAny's tools over the Model Context Protocol (for other agents).

    Args:
        transport: stdio (launched by an agent) or http (streamable HTTP on 127.0.0.1)
        port: the HTTP port
        allow_files: a folder whose DICOMs and recordings dicom_metadata and transcribe may read (repeatable)
        knowledge: the knowledge base: bundled, or a built file
        speech: the speech model transcribe uses
    """
    import anyio

    from .knowledge.build import open_knowledge

    kb = open_knowledge(None if knowledge == "bundled" else Path(knowledge))
    server = build_server(McpTools(kb, allow_files, speech))
    if transport == "stdio":
        from mcp.server.stdio import stdio_server

        async def main():
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())

        anyio.run(main)
    else:
        import uvicorn

        uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .cli_args import run_command

    return run_command(command, argv, prog="medany mcp")
