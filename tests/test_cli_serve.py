"""``automatos serve`` refuses what it cannot serve safely yet."""

from __future__ import annotations

from typer.testing import CliRunner

from automatos.cli import app


def test_serving_needs_no_auth_and_a_loopback_address_until_keys_exist() -> None:
    runner = CliRunner()
    refused = runner.invoke(app, ["serve"])
    assert refused.exit_code == 1 and "API keys are not built yet" in refused.output
    exposed = runner.invoke(app, ["serve", "--no-auth", "--host", "0.0.0.0"])
    assert exposed.exit_code == 1 and "only on a loopback address" in exposed.output
    named = runner.invoke(app, ["serve", "--no-auth", "--host", "example.com"])
    assert named.exit_code == 1
