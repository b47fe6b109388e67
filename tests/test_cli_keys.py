"""``automatos keys``: create (the secret shown once), list and revoke from the command line."""

from __future__ import annotations

import json
from typing import TypeVar

import pytest
from typer.testing import CliRunner, Result

from automatos.cli import app
from automatos.cli.store import STORE_DISABLED
from tests.support.cli_store import with_store

runner = CliRunner()
T = TypeVar("T")


def keys(*args: str) -> Result:
    return runner.invoke(app, ["keys", *args])


def ok(*args: str) -> Result:
    result = keys(*args)
    assert result.exit_code == 0, result.output
    return result


def refused(*args: str) -> str:
    """The one error line of a refused command (exit code 1), without its ``error: ``."""
    result = keys(*args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    return line.removeprefix("error: ")


def test_create_prints_the_secret_once_on_stdout() -> None:
    result = ok("create", "--workspace", "team-a", "--name", "ci")
    secret = result.stdout.strip()
    assert result.stdout == secret + "\n"
    assert secret.startswith("atm_")
    assert "only time the key is shown" in result.stderr
    assert secret not in result.stderr
    found = with_store(lambda store: store.authenticate(secret))
    assert found is not None and found.workspace == "team-a" and found.name == "ci"
    # Nothing shows it again.
    listing = ok("list")
    assert secret not in listing.output and secret[12:] not in listing.output
    assert found.prefix + "..." in listing.stdout
    assert secret not in ok("list", "--json").output


def test_create_json_gives_the_record_and_the_secret() -> None:
    result = ok("create", "--workspace", "w", "--json")
    shown = json.loads(result.stdout)
    assert set(shown) == {
        "id",
        "workspace",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
        "secret",
    }
    assert shown["workspace"] == "w" and shown["name"] == ""
    assert shown["prefix"] == shown["secret"][:12]
    assert "only time" in result.stderr
    (listed,) = [json.loads(line) for line in ok("list", "--json").stdout.splitlines()]
    assert listed == {k: v for k, v in shown.items() if k != "secret"}


@pytest.mark.parametrize("workspace", ["a b", "", "x" * 65, "a/b"])
def test_create_refuses_a_bad_workspace_name(workspace: str) -> None:
    assert "is not a workspace name" in refused("create", "--workspace", workspace)


def test_create_refuses_an_over_long_name() -> None:
    assert "the most it may have is 200" in refused(
        "create", "--workspace", "w", "--name", "x" * 201
    )


def test_list_shows_each_workspace_and_filters() -> None:
    assert "no API keys" in ok("list").stdout
    a = json.loads(ok("create", "--workspace", "alpha", "--name", "one", "--json").stdout)
    b = json.loads(ok("create", "--workspace", "beta", "--name", "two", "--json").stdout)
    lines = ok("list").stdout.splitlines()
    assert lines[0].split()[:3] == ["id", "workspace", "name"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [a["id"], "alpha", "one"],
        [b["id"], "beta", "two"],
    ]
    assert all(line.rstrip().endswith("-") for line in lines[1:])  # never used, not revoked
    only = [
        json.loads(line)["id"]
        for line in ok("list", "--workspace", "beta", "--json").stdout.splitlines()
    ]
    assert only == [b["id"]]
    assert "no API keys for workspace gamma" in ok("list", "--workspace", "gamma").stdout
    assert "is not a workspace name" in refused("list", "--workspace", "no good")


def test_revoke_refuses_the_key_from_then_on() -> None:
    shown = json.loads(ok("create", "--workspace", "w", "--json").stdout)
    assert with_store(lambda store: store.authenticate(shown["secret"])) is not None
    result = ok("revoke", shown["id"])
    assert f"revoked key {shown['id']}" in result.stdout and "workspace w" in result.stdout
    assert with_store(lambda store: store.authenticate(shown["secret"])) is None
    (listed,) = [json.loads(line) for line in ok("list", "--json").stdout.splitlines()]
    assert listed["revoked_at"] is not None
    assert ok("list").stdout.splitlines()[1].rstrip().endswith("UTC")
    ok("revoke", shown["id"])  # again: harmless
    (again,) = [json.loads(line) for line in ok("list", "--json").stdout.splitlines()]
    assert again["revoked_at"] == listed["revoked_at"]


def test_revoke_an_unknown_key_exits_1() -> None:
    assert "no API key 'nope'" in refused("revoke", "nope")


def test_a_disabled_store_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_STORE__ENABLED", "false")
    assert refused("create", "--workspace", "w") == STORE_DISABLED
    assert refused("list") == STORE_DISABLED
    assert refused("revoke", "x") == STORE_DISABLED
