"""Tools an assistant or a client calls: knowledge lookups, DICOM headers, transcription (``TOOLS``)."""

from . import builtin  # noqa: F401 - registers the built-in tools
from .registry import TOOLS, Tool, ToolContext, ToolError, check_arguments, schema_of, tool

__all__ = ["TOOLS", "Tool", "ToolContext", "ToolError", "check_arguments", "schema_of", "tool"]
