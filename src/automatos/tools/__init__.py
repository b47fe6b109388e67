"""Tools an agent can call in its tool loop: Python functions, MCP servers' tools, and the
built-in ones, by name in a registry; and the redaction of what is recorded of their calls."""

from automatos.tools.base import Tool
from automatos.tools.builtins import (
    BUILTIN_NAMES,
    KnowledgeBase,
    Passage,
    builtin_tools,
    calculator,
    current_time,
    default_registry,
    read_file_tool,
    search_knowledge_base_tool,
)
from automatos.tools.function import MAX_RESULT_CHARS, FunctionTool, tool
from automatos.tools.redact import REDACTED, Redactor
from automatos.tools.registry import ToolRegistry, parse_arguments

__all__ = [
    "BUILTIN_NAMES",
    "MAX_RESULT_CHARS",
    "REDACTED",
    "FunctionTool",
    "KnowledgeBase",
    "Passage",
    "Redactor",
    "Tool",
    "ToolRegistry",
    "builtin_tools",
    "calculator",
    "current_time",
    "default_registry",
    "parse_arguments",
    "read_file_tool",
    "search_knowledge_base_tool",
    "tool",
]
