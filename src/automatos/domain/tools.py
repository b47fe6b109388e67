"""What an agent may be given to call, as data: tool names, and how to reach an MCP server (a
command to run over stdio, or a URL over streamable HTTP). No tool runs from here: the
``tools`` package does that."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from automatos.errors import ConfigurationError

if TYPE_CHECKING:
    from automatos.tools.redact import Redactor

__all__ = [
    "HIDDEN",
    "MCP_PREFIX",
    "MCP_SEPARATOR",
    "MCPServerConfig",
    "ToolOutcome",
    "ToolUse",
    "check_tool_name",
    "hide_server_secrets",
    "safe_url",
    "shown_command",
]

HIDDEN = "***"
"""What is shown in place of a secret value (an MCP server's environment or headers)."""

_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_tool_name(name: str, what: str = "a tool") -> str:
    """``name`` if it is a tool name: 1 to 64 letters, digits, ``_`` or ``-`` (the rule of
    OpenAI's function calling, the strictest of the providers').

    Raises:
        ConfigurationError: it is not.
    """
    if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
        shown = name[:80] if isinstance(name, str) else name
        raise ConfigurationError(
            f"{shown!r} cannot name {what}: a tool name is 1 to 64 letters, digits, '_' or '-'"
        )
    return name


MCP_PREFIX = "mcp:"
"""An agent's tool entry ``mcp:SERVER`` allows every tool of the MCP server ``SERVER``."""
MCP_SEPARATOR = "__"
"""An MCP server's tool is registered as ``SERVER__TOOL``."""

SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
"""A server's name: the first half of its tools' names (``{server}__{tool}``), so it keeps to
the tool-name alphabet and leaves room for the tool's own name within 64 characters."""


class MCPServerConfig(BaseModel):
    """One MCP server, as an agent or a workspace configures it.

    Exactly one of ``command`` (the server runs as a child process and speaks MCP over its
    stdin and stdout) and ``url`` (a server already running, reached over streamable HTTP).

    Example::

        MCPServerConfig(name="files", command=["npx", "@mcp/server-filesystem", "/data"])
        MCPServerConfig(name="search", url="https://mcp.example.com/mcp",
                        headers={"Authorization": "Bearer ..."})
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """The server's name; its tools are registered as ``{name}__{tool}``."""
    command: tuple[str, ...] | None = None
    """The program and its arguments (stdio). No shell: each item is one argument."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables for the child process, over the SDK's short safe list (``PATH``,
    ``HOME``...): the engine's own environment, with its API keys, is not passed on."""
    cwd: str | None = None
    """The child process's working directory (the engine's when unset)."""
    url: str | None = None
    """The server's streamable HTTP endpoint, ``http://`` or ``https://``."""
    headers: dict[str, str] = Field(default_factory=dict)
    """HTTP headers sent with every request (an ``Authorization`` header, say)."""

    def shown(self) -> dict[str, Any]:
        """The config as JSON fit to show (the CLI, the HTTP API): the values of its
        environment and headers hidden, its URL without user, password, query or fragment,
        and its command as :func:`shown_command` shows it."""
        shown: dict[str, Any] = _hidden_server(self.model_dump(mode="json", exclude_none=True))
        return shown

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SERVER_NAME.fullmatch(value):
            raise ValueError(
                f"MCP server name {value!r} must be 1 to 32 letters, digits, '_' or '-'"
            )
        if "__" in value:
            raise ValueError(
                f"MCP server name {value!r} must not contain '__': it separates the server's "
                "name from its tools' names"
            )
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or not value[0].strip()):
            raise ValueError("the MCP server command is empty: give the program to run")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"MCP server URL {safe_url(value)!r} must be http:// or https://")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.command is None) == (self.url is None):
            raise ValueError(
                f"MCP server {self.name!r} needs exactly one of 'command' (stdio) and 'url' "
                "(streamable HTTP)"
            )
        if self.command is None and (self.env or self.cwd is not None):
            raise ValueError(f"MCP server {self.name!r}: 'env' and 'cwd' apply to 'command' only")
        if self.url is None and self.headers:
            raise ValueError(f"MCP server {self.name!r}: 'headers' apply to 'url' only")
        for key, value in self.headers.items():  # HTTP sends headers as Latin-1 only
            try:
                f"{key}{value}".encode("latin-1")
            except UnicodeEncodeError:
                raise ValueError(
                    f"MCP server {self.name!r}: header {key[:40]!r} has a character HTTP "
                    "headers cannot carry (only Latin-1: is a placeholder such as '…' left in?)"
                ) from None
        return self

    @property
    def transport(self) -> str:
        """``"stdio"`` or ``"http"``."""
        return "stdio" if self.command is not None else "http"

    def describe(self) -> str:
        """Where the server is, for messages: the program, or the URL without credentials."""
        if self.command is not None:
            return f"command {self.command[0]!r}"
        assert self.url is not None  # one of the two, checked above
        return safe_url(self.url)


def safe_url(url: str) -> str:
    """``url`` without the user, password, query and fragment, which may hold credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "(an unreadable URL)"
    return f"{parts.scheme}://{host}{port}{parts.path}"


ToolOutcome = Literal["ok", "failed", "invalid_arguments", "unknown_tool", "timeout", "over_limit"]


@dataclass(frozen=True, slots=True)
class ToolUse:
    """One tool call of an agent's tool loop, as the engine records it: never the arguments
    or the result themselves (they may hold secrets and are the model's business), but a
    digest of the arguments, how long the call took and how it ended.

    ``outcome``: ``ok``; ``failed`` (the tool raised, or its MCP server died);
    ``invalid_arguments`` (not JSON, or did not validate); ``unknown_tool`` (not registered
    or not allowed for the agent); ``timeout``; ``over_limit`` (past ``tools.max_calls``:
    not run). ``error`` is the message the model was given for anything but ``ok``, redacted
    and short.
    """

    tool: str
    call_id: str
    arguments_digest: str
    """The first 16 hex digits of the SHA-256 of the arguments' JSON text."""
    latency_s: float
    outcome: ToolOutcome
    error: str | None = None


def hide_server_secrets(value: Any) -> Any:
    """``value`` (JSON-like: a stored run, its request, its checkpoint) with the secrets of
    every MCP server config in it hidden: the values of ``env`` and ``headers`` under any
    ``mcp_servers`` list, and a URL's user, password, query and fragment. For showing a
    stored run; what is stored keeps them (a resumed run starts the servers again)."""
    if isinstance(value, list):
        return [hide_server_secrets(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "mcp_servers" and isinstance(item, list):
            out[key] = [_hidden_server(server) for server in item]
        else:
            out[key] = hide_server_secrets(item)
    return out


def _hidden_server(server: Any) -> Any:
    if not isinstance(server, dict):
        return server
    shown = dict(server)
    for secret in ("env", "headers"):
        if isinstance(shown.get(secret), dict):
            shown[secret] = dict.fromkeys(shown[secret], HIDDEN)
    if isinstance(shown.get("url"), str):
        shown["url"] = safe_url(shown["url"])
    command = shown.get("command")
    if isinstance(command, list | tuple) and all(isinstance(arg, str) for arg in command):
        shown["command"] = shown_command(command)
    return shown


def shown_command(command: Sequence[str]) -> list[str]:
    """A server's command fit to show: secrets are often given as arguments (a database
    URL with its password, ``--token=…``, ``--api-key KEY``). A URL argument is shown as
    :func:`safe_url` shows it; secrets of the known shapes, and what follows a secret's
    name, are redacted as what is recorded of tool calls is
    (:class:`~automatos.tools.redact.Redactor`). What is stored keeps them."""
    redactor = _redactor()
    shown: list[str] = []
    after_name = False
    for arg in command:
        if after_name:
            shown.append(HIDDEN)
        elif "://" in arg and urlsplit(arg).netloc:
            shown.append(safe_url(arg))
        else:
            shown.append(redactor.text(arg))
        flag = arg.lstrip("-")
        after_name = arg.startswith("-") and "=" not in arg and redactor.is_secret_name(flag)
    return shown


@functools.cache
def _redactor() -> Redactor:
    from automatos.tools.redact import Redactor  # here: the tools package imports this one

    return Redactor()
