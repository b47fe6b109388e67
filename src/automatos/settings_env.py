"""How ``AUTOMATOS_*`` variables become :class:`~automatos.settings.Settings`, and what is
said about them: one key of a mapping set by its own variable, misspelt variables named,
and a validation error told as the variable that caused it."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsError,
)

from automatos.settings import ENV_PREFIX, Settings

__all__ = ["KeyByKey", "describe_settings_error", "env_warnings"]


class KeyByKey(PydanticBaseSettingsSource):
    """The environment, where a variable naming one key of a mapping setting changes that key
    only: ``AUTOMATOS_QUALITY__WEIGHTS__ACCURACY=0.5`` one weight,
    ``AUTOMATOS_LLM__PRICES__MY-MODEL='{"input_per_mtok": 1, "output_per_mtok": 2}'`` one price.

    pydantic-settings builds the mapping from such variables alone (a single weight left
    every other dimension uncounted, without a word; a single price dropped the price table)
    and loses them when the whole mapping is set as JSON too. Here they change the mapping's
    defaults, or the JSON mapping when one is given.
    """

    def __init__(self, settings_cls: type[BaseSettings], env: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Not used: :meth:`__call__` reads the environment as a whole."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data = self._env()
        given = None
        if isinstance(self._env, EnvSettingsSource):  # what it read, as it read it
            given = {k: v for k, v in self._env.env_vars.items() if v is not None}
        env = _automatos_env(given)
        for section, name, model in _mapping_fields():
            var = f"{ENV_PREFIX}{section.upper()}__{name.upper()}"
            keyed: dict[str, Any] = {}
            for key, value in sorted(env.items()):
                if key.startswith(f"{var}__"):
                    _set_path(keyed, key.removeprefix(f"{var}__").lower().split("__"), value)
            if keyed and isinstance(data.get(section), dict):
                base = _json_mapping(env, section, name)
                if base is None:
                    base = model().model_dump(mode="json")[name]
                data[section][name] = _merged(base, keyed)
        return data


def _mapping_fields() -> Iterator[tuple[str, str, type[BaseModel]]]:
    """``(section, field, section model)`` of each mapping setting (``quality.weights``)."""
    for section, field in Settings.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for name, inner in model.model_fields.items():
                if get_origin(inner.annotation) is dict:
                    yield section, name, model


def _json_mapping(env: Mapping[str, str], section: str, name: str) -> dict[str, Any] | None:
    """The mapping ``section.name`` as JSON variables give it (``AUTOMATOS_QUALITY__WEIGHTS``,
    or the ``weights`` of ``AUTOMATOS_QUALITY``), if they do."""
    whole = f"{ENV_PREFIX}{section.upper()}"
    for var, inside in ((f"{whole}__{name.upper()}", None), (whole, name)):
        try:
            value = json.loads(env[var]) if var in env else None
        except ValueError:  # said by pydantic-settings, which read it first
            continue
        if inside is not None and isinstance(value, dict):
            value = value.get(inside)
        if isinstance(value, dict):
            return value
    return None


def _set_path(tree: dict[str, Any], path: list[str], value: str) -> None:
    """Set ``value`` at ``path`` in ``tree``; a JSON object is set as a mapping, as
    pydantic-settings reads it (a whole price, ``{"input_per_mtok": 1, ...}``)."""
    for key in path[:-1]:
        branch = tree.get(key)
        if not isinstance(branch, dict):
            branch = tree[key] = {}
        tree = branch
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    tree[path[-1]] = parsed if isinstance(parsed, dict) else value


def _merged(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` laid over it, mapping by mapping."""
    out = dict(base)
    for key, value in changes.items():
        below = out.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            out[key] = _merged(below, value)
        else:
            out[key] = value
    return out


# What users meet when the environment is wrong: a misspelt variable is ignored by
# pydantic-settings, and a bad value fails with the field's path, not the variable's name.

_SECRET_PARTS = ("KEY", "URL", "SECRET", "PASSWORD", "TOKEN")

_NOT_SETTINGS = frozenset({f"{ENV_PREFIX}DEBUG"})
"""Variables of automatos that are not settings: ``AUTOMATOS_DEBUG=1`` shows the traceback
of an internal error in the CLI."""


_Kind = Literal["section", "mapping", "list", "value"]


def _env_names(model: type[BaseModel], prefix: str = ENV_PREFIX) -> Iterator[tuple[str, _Kind]]:
    """Every variable that sets a field of ``model``, with what it holds: a whole section
    (JSON, or one variable per field), a mapping (JSON, or one variable per key), a list
    (JSON) or a value."""
    for name, field in model.model_fields.items():
        var = f"{prefix}{name.upper()}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield var, "section"
            yield from _env_names(annotation, f"{var}__")
        elif get_origin(annotation) is dict:
            yield var, "mapping"
        else:
            yield var, "list" if get_origin(annotation) in (tuple, list) else "value"


def _automatos_env(environ: Mapping[str, str] | None) -> dict[str, str]:
    """The ``AUTOMATOS_*`` variables, by upper-case name (settings ignore the case)."""
    source = os.environ if environ is None else environ
    return {k.upper(): v for k, v in source.items() if k.upper().startswith(ENV_PREFIX)}


def env_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line for each ``AUTOMATOS_*`` variable that sets nothing, naming the closest setting.

    Settings ignore variables they do not know, so a misspelt one (``AUTOMATOS_LLM__MODLE``)
    would otherwise leave its setting at the default without a word. The CLI prints these
    lines; a program that builds :class:`Settings` from its environment may show them too.

    Args:
        environ: the variables to check; by default this process's environment.
    """
    names = dict(_env_names(Settings))
    containers = [f"{name}__" for name, kind in names.items() if kind == "mapping"]
    suffixes = [name.removeprefix(ENV_PREFIX) for name in names]
    warnings = []
    for var in sorted(_automatos_env(environ)):
        if var in names or var in _NOT_SETTINGS or any(var.startswith(c) for c in containers):
            continue
        close = difflib.get_close_matches(var.removeprefix(ENV_PREFIX), suffixes, n=1)
        hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
        warnings.append(f"{var} is not a setting and is ignored{hint}")
    return warnings


def describe_settings_error(
    error: ValidationError | SettingsError, environ: Mapping[str, str] | None = None
) -> str:
    """One line naming each wrong setting by the variable that set it, and what is wrong.

    For example ``AUTOMATOS_EXECUTION__MAX_CONCURRENCY: Input should be greater than 0
    (got '0')``. A setting that no variable set (one passed in code) is named by its path,
    ``execution.max_concurrency``.
    """
    env = _automatos_env(environ)
    if isinstance(error, SettingsError):
        return _describe_unparsable(error, env)
    parts = []
    for e in error.errors(include_url=False)[:5]:
        loc = [str(part) for part in e["loc"]]
        message = e["msg"].removeprefix("Value error, ")
        var, rest = _variable_of(loc, env)
        if var is None:
            parts.append(f"setting {'.'.join(loc)}: {message}")
            continue
        where = f" ({'.'.join(rest)})" if rest else ""
        shown = ""
        keyed = any(name.startswith(f"{var}__") for name in env)  # the value is not all
        if not rest and var in env and not keyed and not any(p in var for p in _SECRET_PARTS):
            shown = f" (got {env[var][:60]!r})"
        parts.append(f"{var}{where}: {message}{shown}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _variable_of(loc: list[str], env: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """The set variable that holds ``loc`` (the most specific one), and the path below it;
    ``AUTOMATOS_QUALITY__WEIGHTS__*`` if variables of single keys made the mapping."""
    for i in range(len(loc), 0, -1):
        var = ENV_PREFIX + "__".join(loc[:i]).upper()
        if var in env:
            return var, loc[i:]
    for i in range(len(loc), 0, -1):
        keys = ENV_PREFIX + "__".join(loc[:i]).upper() + "__"
        if any(name.startswith(keys) for name in env):
            return f"{keys}*", loc[i:]
    return None, loc


def _describe_unparsable(error: SettingsError, env: Mapping[str, str]) -> str:
    # pydantic-settings names the top-level section ("llm"); the culprit is the variable
    # whose value should be JSON and is not.
    names = dict(_env_names(Settings))
    for var, value in sorted(env.items()):
        if names.get(var, "value") == "value":
            continue
        try:
            json.loads(value)
        except ValueError as exc:
            return f"{var}: not valid JSON ({exc})"
    return str(error)
