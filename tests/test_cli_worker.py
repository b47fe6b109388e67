"""``automatos worker``: bad input and an unreachable queue end it with one clear line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner, Result

from automatos.cli import app

runner = CliRunner()


def _worker(*args: str) -> Result:
    return runner.invoke(app, ["worker", *args])


def test_an_unreachable_redis_ends_it_naming_the_setting() -> None:
    result = _worker(
        "--redis-url", "redis://127.0.0.1:1/0", "--provider", "automatos.testing:ScriptedLLM"
    )
    assert result.exit_code == 1
    assert "runner.redis_url" in result.output
    assert "127.0.0.1:1" in result.output
    assert "job(s) at once" not in result.output  # it never said it was ready


def test_a_bad_queue_name_is_a_usage_error() -> None:
    result = _worker("--queue", "two words")
    assert result.exit_code == 2
    assert "queue" in result.output
    assert "Traceback" not in result.output


def test_a_provider_that_cannot_be_found_is_a_usage_error() -> None:
    for path, problem in [
        ("nosuch_module_x:thing", "No module named"),
        ("automatos.testing", "module:name"),
        ("automatos.testing:NoSuchThing", "NoSuchThing"),
        ("automatos.settings:ENV_PREFIX", "not an LLMProvider"),
    ]:
        result = _worker("--provider", path)
        assert result.exit_code == 2, (path, result.output)
        assert problem in result.output, (path, result.output)


def test_a_provider_class_is_made_from_the_settings() -> None:
    import typer

    from automatos.cli.worker import _plugin
    from automatos.settings import Settings
    from tests.runners.worker_models import EchoProvider

    made = _plugin("tests.runners.worker_models:EchoProvider", Settings())
    assert isinstance(made, EchoProvider)
    with pytest.raises(typer.Exit) as refused:
        _plugin("automatos.settings:Settings", Settings())  # a class, but no provider
    assert refused.value.exit_code == 2
