"""``automatos runs``: options checked before the store is opened."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from automatos.cli import app


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_runs_list_takes_a_positive_limit(limit: str) -> None:
    result = CliRunner().invoke(app, ["runs", "list", "--limit", limit])
    assert result.exit_code == 2, result.output
    assert "--limit" in result.output


@pytest.mark.parametrize("command", ["show", "resume"])
def test_an_empty_run_id_is_a_usage_error(command: str) -> None:
    result = CliRunner().invoke(app, ["runs", command, " "])
    assert result.exit_code == 2, result.output
    assert "run's id" in result.output
