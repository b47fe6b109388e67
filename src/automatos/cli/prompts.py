"""``automatos prompts``: the prompt registry, each stage's template with its versions, and
A/B tests of a candidate version against the active one.

Every command first seeds the slugs the workspace does not hold yet (version 1, the built-in
text), as a workflow does, so that what it shows is what the next workflow would use.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from automatos.cli.output import fail, load_settings
from automatos.cli.store import STORE_DISABLED, store_settings, with_store

if TYPE_CHECKING:
    from datetime import datetime

    from automatos.prompts.ab import AbVerdict
    from automatos.prompts.base import AbOutcome, AbTest, PromptState, PromptVersion
    from automatos.store.sql import SqlStore

__all__ = ["prompts_app"]

prompts_app = typer.Typer(
    help="The prompt registry: each stage's template, its versions and A/B tests.",
    no_args_is_help=True,
)
ab_app = typer.Typer(
    help="A/B tests: a candidate version against the active one, on a share of workflows.",
    no_args_is_help=True,
)
prompts_app.add_typer(ab_app, name="ab")

_STDIN = "-"


def _slug(slug: str) -> str:
    """``slug``, or one error line naming the slugs there are."""
    from automatos.prompts.catalog import CATALOG

    if slug not in CATALOG:
        raise fail(f"unknown prompt slug {slug!r}; the slugs are {', '.join(CATALOG)}")
    return slug


async def _seeded(store: SqlStore) -> PromptState:
    """The registry's state, every slug of the catalog seeded."""
    from automatos.prompts.catalog import CATALOG

    return await store.prompt_state({slug: spec.text for slug, spec in CATALOG.items()})


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _versions(count: int) -> str:
    return f"{count} version" + ("" if count == 1 else "s")


def _label(version: PromptVersion) -> str:
    return f"{version.slug} v{version.version}" + (" (active)" if version.active else "")


def _find(versions: list[PromptVersion], slug: str, number: int | None) -> PromptVersion:
    """Version ``number`` of ``slug`` (the active one if ``None``), or one error line."""
    for version in versions:
        if version.version == number or (number is None and version.active):
            return version
    raise fail(f"{slug!r} has no version {number}; its versions are 1 to {len(versions)}")


@prompts_app.command("list")
def prompts_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List each stage's prompt: its active version, how many versions, its running test."""
    import json

    from automatos.prompts.catalog import CATALOG

    async def read(store: SqlStore) -> tuple[PromptState, dict[str, int]]:
        state = await _seeded(store)
        return state, {slug: len(await store.prompt_versions(slug)) for slug in CATALOG}

    state, counts = with_store(store_settings(), read)
    tests = {test.slug: test for test in state.tests}
    for slug, spec in CATALOG.items():
        test = tests.get(slug)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "slug": slug,
                        "active": state.active[slug].version,
                        "versions": counts[slug],
                        "test": test.model_dump(mode="json") if test else None,
                        "purpose": spec.purpose,
                    }
                )
            )
            continue
        running = f"A/B {test.id}: v{test.candidate_version} on {test.share:.0%}" if test else "-"
        typer.echo(
            f"{slug:<12} v{state.active[slug].version:<4} {_versions(counts[slug]):<11} "
            f"{running:<20} {spec.purpose}"
        )


@prompts_app.command("show")
def prompts_show(
    slug: Annotated[str, typer.Argument(help="The prompt's slug (automatos prompts list).")],
    version: Annotated[
        int | None, typer.Option("--version", "-v", help="Which version; default: the active.")
    ] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="Print only the text (to edit it and add it back).")
    ] = False,
) -> None:
    """Show a version of a prompt: its text, with its number, note and date."""
    _slug(slug)

    async def read(store: SqlStore) -> list[PromptVersion]:
        await _seeded(store)
        return await store.prompt_versions(slug)

    shown = _find(with_store(store_settings(), read), slug, version)
    if not raw:
        state = " (active)" if shown.active else ""
        note = f": {shown.note}" if shown.note else ""
        typer.echo(f"{slug} version {shown.version}{state}, {_when(shown.created_at)}{note}")
        typer.echo()
    typer.echo(shown.text)


def _read_template(file: str) -> str:
    """The text of ``file`` (``-``: standard input) without the final newline an editor
    adds; one error line if it cannot be read or is far too long."""
    from automatos.errors import InvalidRequestError
    from automatos.files import check_utf8
    from automatos.store.prompt_records import MAX_TEMPLATE_CHARS

    where = "standard input" if file == _STDIN else file
    try:
        if file == _STDIN:
            text = sys.stdin.read(MAX_TEMPLATE_CHARS + 2)
        else:
            with Path(file).open(encoding="utf-8") as handle:
                text = handle.read(MAX_TEMPLATE_CHARS + 2)
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read the template from {where}: {exc}") from None
    try:
        check_utf8(text, where)
    except InvalidRequestError as exc:
        raise fail(str(exc)) from None
    text = text.removesuffix("\n").removesuffix("\r")
    if len(text) > MAX_TEMPLATE_CHARS:
        raise fail(
            f"the template in {where} is longer than {MAX_TEMPLATE_CHARS:,} characters, "
            "the most the registry keeps"
        )
    return text


@prompts_app.command("add")
def prompts_add(
    slug: Annotated[str, typer.Argument(help="The prompt's slug (automatos prompts list).")],
    file: Annotated[str, typer.Argument(help="The template's file, or - for standard input.")],
    note: Annotated[str, typer.Option(help="What changed, and why.")] = "",
    activate: Annotated[
        bool, typer.Option("--activate", help="Make it the active version at once.")
    ] = False,
) -> None:
    """Add a new version of a prompt, not active unless --activate.

    Its placeholders must be those its stage fills; the file's final newline is dropped.
    """
    from automatos.errors import InvalidRequestError, PromptError
    from automatos.files import check_utf8

    _slug(slug)
    settings = store_settings()
    text = _read_template(file)
    try:
        check_utf8(note, "the note")
    except InvalidRequestError as exc:
        raise fail(str(exc)) from None

    async def add(store: SqlStore) -> PromptVersion:
        if activate:
            for test in await store.ab_tests(slug):
                if test.status == "running":
                    raise PromptError(
                        f"{slug!r} has a running A/B test ({test.id}) whose control is its "
                        f"active version: stop it first (automatos prompts ab stop {test.id}) "
                        "or add the version without --activate"
                    )
        added = await store.add_prompt(slug, text, note)
        if activate:
            await store.activate_prompt(slug, added.version)
        return added

    added = with_store(settings, add)
    if activate:
        typer.echo(f"added version {added.version} of {slug}, now active")
    else:
        typer.echo(
            f"added version {added.version} of {slug} (not active: automatos prompts activate "
            f"{slug} {added.version}, or test it: automatos prompts ab start {slug} "
            f"--candidate {added.version})"
        )


@prompts_app.command("activate")
def prompts_activate(
    slug: Annotated[str, typer.Argument(help="The prompt's slug (automatos prompts list).")],
    version: Annotated[int, typer.Argument(help="The version to make active.")],
) -> None:
    """Make a version the active one: the one every workflow uses from now on."""
    _slug(slug)

    async def activate(store: SqlStore) -> int:
        before = (await _seeded(store)).active[slug].version
        await store.activate_prompt(slug, version)
        return before

    before = with_store(store_settings(), activate)
    if before == version:
        typer.echo(f"version {version} of {slug} was already active")
    else:
        typer.echo(f"version {version} of {slug} is active (it was version {before})")


@prompts_app.command("diff")
def prompts_diff(
    slug: Annotated[str, typer.Argument(help="The prompt's slug (automatos prompts list).")],
    a: Annotated[int, typer.Argument(help="The version shown as removed lines (-).")],
    b: Annotated[
        int | None,
        typer.Argument(help="The version shown as added lines (+); default: the active one."),
    ] = None,
) -> None:
    """Show how version B differs from version A, as a unified diff."""
    import difflib

    _slug(slug)

    async def read(store: SqlStore) -> list[PromptVersion]:
        await _seeded(store)
        return await store.prompt_versions(slug)

    versions = with_store(store_settings(), read)
    old, new = _find(versions, slug, a), _find(versions, slug, b)
    lines = list(
        difflib.unified_diff(
            old.text.splitlines(),
            new.text.splitlines(),
            fromfile=_label(old),
            tofile=_label(new),
            lineterm="",
        )
    )
    if not lines:
        typer.echo(f"versions {old.version} and {new.version} of {slug} have the same text")
    for line in lines:
        typer.echo(line)


@ab_app.command("start")
def ab_start(
    slug: Annotated[str, typer.Argument(help="The prompt's slug (automatos prompts list).")],
    candidate: Annotated[int, typer.Option(help="The version to test against the active one.")],
    share: Annotated[
        float | None,
        typer.Option(help="Share of workflows given the candidate; default prompts.ab_share."),
    ] = None,
    min_per_arm: Annotated[
        int | None,
        typer.Option(
            help="Outcomes per arm before the first look; default prompts.ab_min_per_arm."
        ),
    ] = None,
    looks: Annotated[
        int | None,
        typer.Option(help="How many times the rule looks (1-5); default prompts.ab_looks."),
    ] = None,
) -> None:
    """Start an A/B test of a version against the active one (one test per prompt at a time)."""
    _slug(slug)
    settings = load_settings()
    if not settings.store.enabled:
        raise fail(STORE_DISABLED)
    defaults = settings.prompts
    chosen = (
        defaults.ab_share if share is None else share,
        defaults.ab_min_per_arm if min_per_arm is None else min_per_arm,
        defaults.ab_looks if looks is None else looks,
    )

    async def start(store: SqlStore) -> AbTest:
        await _seeded(store)
        return await store.start_ab(slug, candidate, *chosen)

    test = with_store(settings.store, start)
    at = [str(test.min_per_arm * k) for k in range(1, test.looks + 1)]
    when = at[0] if len(at) == 1 else f"{', '.join(at[:-1])} and {at[-1]}"
    typer.echo(
        f"started A/B test {test.id} of {slug}: version {test.candidate_version} on "
        f"{test.share:.0%} of workflows against version {test.control_version} (active); "
        f"the rule looks at {when} outcomes per arm"
    )


@ab_app.command("status")
def ab_status(
    slug: Annotated[
        str | None, typer.Argument(help="Only this prompt's tests; default: every prompt's.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Ended tests too, newest first.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Show running A/B tests: each arm's figures, the effect on Q and the rule's verdict."""
    import json

    from automatos.errors import AutomatosError
    from automatos.prompts.ab import evaluate

    if slug is not None:
        _slug(slug)

    async def read(store: SqlStore) -> list[tuple[AbTest, list[AbOutcome]]]:
        await _seeded(store)
        tests = await store.ab_tests(slug)
        return [
            (test, await store.ab_outcomes(test.id))
            for test in tests
            if every or test.status == "running"
        ]

    found = with_store(store_settings(), read)
    if not found and not as_json:
        which = f" of {slug}" if slug else ""
        more = "" if every else " (--all shows ended ones too)"
        typer.echo(f"no running A/B tests{which}{more}")
        return
    for test, outcomes in found:
        try:
            verdict = evaluate(test, outcomes)
        except AutomatosError as exc:
            raise fail(exc) from None
        if as_json:
            shown = {
                "test": test.model_dump(mode="json"),
                "verdict": verdict.model_dump(mode="json"),
            }
            typer.echo(json.dumps(shown))
        else:
            _print_test(test, verdict)


def _figure(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _print_test(test: AbTest, verdict: AbVerdict) -> None:
    if test.status == "running":
        state = f"running since {_when(test.started_at)}"
    else:
        ended = _when(test.ended_at) if test.ended_at else "-"
        state = f"{test.status} {ended}" + (f": {test.decision}" if test.decision else "")
    typer.echo(
        f"A/B test {test.id} of {test.slug}: version {test.candidate_version} (candidate, "
        f"{test.share:.0%}) against {test.control_version} (control), {state}"
    )
    typer.echo(
        f"  {'arm':<10} {'version':>7} {'runs':>5} {'n':>5} {'mean Q':>7} {'success':>8} "
        f"{'tokens':>8} {'latency':>8}"
    )
    arms = (
        (
            "control",
            test.control_version,
            verdict.runs_control,
            verdict.n_control,
            verdict.mean_control,
            verdict.success_rate_control,
            verdict.mean_tokens_control,
            verdict.mean_latency_s_control,
        ),
        (
            "candidate",
            test.candidate_version,
            verdict.runs_candidate,
            verdict.n_candidate,
            verdict.mean_candidate,
            verdict.success_rate_candidate,
            verdict.mean_tokens_candidate,
            verdict.mean_latency_s_candidate,
        ),
    )
    for arm, version, runs, n, q, success, tokens, latency in arms:
        typer.echo(
            f"  {arm:<10} {version:>7} {runs:>5} {n:>5} {_figure(q, '.3f'):>7} "
            f"{_figure(success, '.0%'):>8} {_figure(tokens, '.0f'):>8} "
            f"{_figure(latency, '.1f', 's'):>8}"
        )
    if verdict.effect is None:
        effect = "effect on Q: - (each arm needs two outcomes)"
    else:
        effect = (
            f"effect on Q {verdict.effect:+.3f} (95% CI {_figure(verdict.low, '+.3f')} to "
            f"{_figure(verdict.high, '+.3f')}), p = {_figure(verdict.p_value, '.3g')}"
        )
    look = f"look {verdict.look} of {verdict.looks}, level {verdict.boundary:g} at each"
    typer.echo(f"  {effect}; {look}")
    said = "verdict" if test.status == "running" else "the rule on its outcomes"
    typer.echo(f"  {said}: {verdict.decision}: {verdict.reason}")


@ab_app.command("stop")
def ab_stop(
    test_id: Annotated[int, typer.Argument(help="The test's id (automatos prompts ab status).")],
    reason: Annotated[str, typer.Option(help="Why it was stopped, kept with the test.")] = "",
) -> None:
    """Stop a running A/B test; the active version stays active."""

    async def stop(store: SqlStore) -> AbTest:
        decision = "stopped by hand" + (f": {reason}" if reason else "")
        return await store.end_ab(test_id, "stopped", decision)

    test = with_store(store_settings(), stop)
    typer.echo(
        f"stopped A/B test {test.id} of {test.slug}; version {test.control_version} stays active"
    )
