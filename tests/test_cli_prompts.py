"""``automatos prompts``: versions, activation, diffs and A/B tests from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import pytest
from typer.testing import CliRunner, Result

from automatos.cli import app
from automatos.cli.store import STORE_DISABLED
from automatos.prompts.base import AbOutcome
from automatos.prompts.catalog import CATALOG
from automatos.store.sql import SqlStore
from tests.support.cli_store import with_store
from tests.test_cli_imports import HEAVY, imported

runner = CliRunner()
T = TypeVar("T")


def prompts(*args: str, stdin: str | None = None) -> Result:
    return runner.invoke(app, ["prompts", *args], input=stdin)


def ok(*args: str, stdin: str | None = None) -> str:
    result = prompts(*args, stdin=stdin)
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(*args: str) -> str:
    """The one error line of a refused command (exit code 1), without its ``error: ``."""
    result = prompts(*args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    return line.removeprefix("error: ")


def strict_judge(tmp_path: Path) -> Path:
    file = tmp_path / "judge.txt"
    file.write_text(CATALOG["arbiter"].text + "\nBe strict.\n")
    return file


def test_list_shows_every_stage_prompt_seeded() -> None:
    lines = ok("list").splitlines()
    assert [line.split()[0] for line in lines] == list(CATALOG)
    judge = next(line for line in lines if line.startswith("arbiter"))
    assert judge.split()[1:4] == ["v1", "1", "version"]
    assert CATALOG["arbiter"].purpose in judge
    rows = [json.loads(line) for line in ok("list", "--json").splitlines()]
    assert rows[0] == {
        "slug": "decomposer",
        "active": 1,
        "versions": 1,
        "test": None,
        "purpose": CATALOG["decomposer"].purpose,
    }


def test_show_a_version(tmp_path: Path) -> None:
    shown = ok("show", "arbiter").splitlines()
    assert shown[0].startswith("arbiter version 1 (active), ") and shown[0].endswith(": built-in")
    assert "\n".join(shown[2:]) == CATALOG["arbiter"].text
    assert ok("show", "arbiter", "--raw") == CATALOG["arbiter"].text + "\n"
    ok("add", "arbiter", str(strict_judge(tmp_path)), "--note", "stricter")
    assert ok("show", "arbiter", "--version", "2", "--raw").endswith("Be strict.\n")
    assert "arbiter version 2, " in ok("show", "arbiter", "-v", "2")
    assert refused("show", "jduge") == (
        "unknown prompt slug 'jduge'; the slugs are " + ", ".join(CATALOG)
    )
    assert refused("show", "arbiter", "--version", "7") == (
        "'arbiter' has no version 7; its versions are 1 to 2"
    )


def test_add_from_a_file_or_standard_input(tmp_path: Path) -> None:
    said = ok("add", "arbiter", str(strict_judge(tmp_path)), "--note", "stricter")
    assert said.startswith("added version 2 of arbiter (not active: ")
    versions = with_store(lambda store: store.prompt_versions("arbiter"))
    assert versions[1].text == CATALOG["arbiter"].text + "\nBe strict."  # final newline dropped
    assert versions[1].note == "stricter" and not versions[1].active
    piped = ok("add", "synthesiser", "-", "--activate", stdin="Answer in one paragraph.\n")
    assert piped == "added version 2 of synthesiser, now active\n"
    state = with_store(lambda store: store.prompt_state({"synthesiser": "x"}))
    assert state.active["synthesiser"].text == "Answer in one paragraph."


def test_bad_templates_and_files_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("Grade {request}")
    assert "uses the placeholder {request}, which its stage does not fill" in refused(
        "add", "arbiter", str(bad)
    )
    assert refused("add", "arbiter", str(tmp_path / "missing.txt")).startswith(
        f"cannot read the template from {tmp_path / 'missing.txt'}: "
    )
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "cannot read the template" in refused("add", "arbiter", str(binary))
    huge = tmp_path / "huge.txt"
    huge.write_text("x" * 200_000)
    assert "longer than 100,000 characters" in refused("add", "arbiter", str(huge))
    assert "unknown prompt slug 'nope'" in refused("add", "nope", str(bad))
    assert with_store(lambda store: store.prompt_versions("arbiter")) == []  # nothing stored
    assert ok("list").count("1 version ") == len(CATALOG)


def test_activate_and_diff(tmp_path: Path) -> None:
    ok("add", "arbiter", str(strict_judge(tmp_path)))
    assert ok("activate", "arbiter", "2") == "version 2 of arbiter is active (it was version 1)\n"
    assert ok("activate", "arbiter", "2") == "version 2 of arbiter was already active\n"
    assert (
        refused("activate", "arbiter", "3")
        == "PromptError: 'arbiter' has no version 3; its versions are 1 to 2"
    )
    diff = ok("diff", "arbiter", "1").splitlines()
    assert diff[:2] == ["--- arbiter v1", "+++ arbiter v2 (active)"]
    assert "+Be strict." in diff and not any(line.startswith("-") for line in diff[2:])
    backwards = ok("diff", "arbiter", "2", "1").splitlines()
    assert "-Be strict." in backwards
    assert ok("diff", "arbiter", "2") == "versions 2 and 2 of arbiter have the same text\n"
    assert "no version 9" in refused("diff", "arbiter", "1", "9")


def test_an_ab_test_from_start_to_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_PROMPTS__AB_SHARE", "0.3")
    ok("add", "arbiter", str(strict_judge(tmp_path)))
    started = ok("ab", "start", "arbiter", "--candidate", "2", "--looks", "2")
    assert started == (
        "started A/B test 1 of arbiter: version 2 on 30% of workflows against version 1 "
        "(active); the rule looks at 30 and 60 outcomes per arm\n"
    )
    (test,) = with_store(lambda store: store.ab_tests())
    assert (test.share, test.min_per_arm, test.looks) == (0.3, 30, 2)
    assert "A/B 1: v2 on 30%" in ok("list")
    assert "already has a running A/B test (1" in refused(
        "ab", "start", "arbiter", "--candidate", "2"
    )
    assert "whose control is its active version" in refused(
        "add", "arbiter", str(strict_judge(tmp_path)), "--activate"
    )
    assert len(with_store(lambda store: store.prompt_versions("arbiter"))) == 2  # none added
    assert ok("ab", "stop", "1", "--reason", "wrong candidate") == (
        "stopped A/B test 1 of arbiter; version 1 stays active\n"
    )
    assert "has already ended (stopped: stopped by hand: wrong candidate)" in refused(
        "ab", "stop", "1"
    )
    assert "no A/B test 7" in refused("ab", "stop", "7")
    assert ok("ab", "status") == "no running A/B tests (--all shows ended ones too)\n"
    ended = ok("ab", "status", "--all")
    assert "stopped" in ended and "stopped by hand: wrong candidate" in ended


def test_bad_test_settings_are_refused(tmp_path: Path) -> None:
    ok("add", "arbiter", str(strict_judge(tmp_path)))
    assert refused("ab", "start", "arbiter", "--candidate", "2", "--share", "1.5") == (
        "PromptError: cannot start an A/B test of 'arbiter': share should be less than or "
        "equal to 0.99 (got 1.5)"
    )
    assert "looks should be less than or equal to 5" in refused(
        "ab", "start", "arbiter", "--candidate", "2", "--looks", "9"
    )
    assert "is its active version" in refused("ab", "start", "arbiter", "--candidate", "1")
    assert "no version 4" in refused("ab", "start", "arbiter", "--candidate", "4")


def test_status_shows_each_arm_the_effect_and_the_verdict(tmp_path: Path) -> None:
    ok("add", "arbiter", str(strict_judge(tmp_path)))
    ok("ab", "start", "arbiter", "--candidate", "2", "--min-per-arm", "5", "--share", "0.5")

    def run(i: int, arm: str, q: float) -> AbOutcome:
        return AbOutcome.model_validate(
            {
                "test_id": 1,
                "workflow_id": f"{arm}-{i}",
                "arm": arm,
                "quality": q + 0.01 * (i % 3),
                "success": True,
                "tokens": 1000 if arm == "control" else 1200,
                "latency_s": 2.0,
            }
        )

    async def record(store: SqlStore) -> None:  # as workflows end: one at a time
        for i in range(6):
            await store.record_outcomes([run(i, "control", 0.5)])
            await store.record_outcomes([run(i, "candidate", 0.8)])

    with_store(record)
    status = ok("ab", "status", "arbiter").splitlines()
    assert status[0].startswith(
        "A/B test 1 of arbiter: version 2 (candidate, 50%) against 1 (control), running since "
    )
    assert status[1].split() == [
        "arm", "version", "runs", "n", "mean", "Q", "success", "tokens", "latency"
    ]  # fmt: skip
    # the rule decided at its first look, on five outcomes per arm
    assert status[2].split() == ["control", "1", "5", "5", "0.508", "100%", "1000", "2.0s"]
    assert status[3].split() == ["candidate", "2", "5", "5", "0.808", "100%", "1200", "2.0s"]
    assert status[4].startswith("  effect on Q +0.300 (95% CI +0.2")
    assert "p = " in status[4] and "look 1 of 4, level 0.0182 at each" in status[4]
    assert status[5].startswith("  verdict: activate: the candidate is better at look 1 of 4")
    (line,) = ok("ab", "status", "--json").splitlines()
    shown = json.loads(line)
    assert shown["test"]["id"] == 1 and shown["test"]["status"] == "running"
    verdict = shown["verdict"]
    assert verdict["decision"] == "activate" and verdict["n_control"] == 5
    assert verdict["p_value"] < verdict["boundary"]
    assert (
        ok("ab", "status", "selector")
        == "no running A/B tests of selector (--all shows ended ones too)\n"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["show", "arbiter"],
        ["add", "arbiter", "-"],
        ["activate", "arbiter", "1"],
        ["diff", "arbiter", "1"],
        ["ab", "start", "arbiter", "--candidate", "2"],
        ["ab", "status"],
        ["ab", "stop", "1"],
    ],
)
def test_a_disabled_store_is_said_once(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AUTOMATOS_STORE__ENABLED", "false")
    assert refused(*command) == STORE_DISABLED
    assert not (tmp_path / "automatos-data").exists()


def test_help_imports_no_database() -> None:
    assert imported("prompts", "--help").isdisjoint(HEAVY)
    assert imported("prompts", "ab", "--help").isdisjoint(HEAVY)
