"""A workflow's A/B arm, and the prompt set it gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest

from automatos.errors import PromptError
from automatos.prompts.base import AbTest, PromptState, PromptVersion
from automatos.prompts.catalog import CATALOG
from automatos.prompts.resolve import PromptSet, arm_of

IDS = [f"wf-{i}" for i in range(5_000)] + [uuid.UUID(int=i * 7919).hex for i in range(5_000)]
"""10,000 workflow ids of both shapes: counters and uuid hex."""


@pytest.mark.parametrize("share", [0.05, 0.2, 0.5, 0.8])
@pytest.mark.parametrize("test_id", [1, 2, 977])
def test_the_split_is_within_3_points_of_the_share(test_id: int, share: float) -> None:
    candidates = sum(arm_of(test_id, wf, share) == "candidate" for wf in IDS)
    assert abs(candidates / len(IDS) - share) <= 0.03


def test_the_arm_is_the_same_every_time_and_in_every_process() -> None:
    first = [arm_of(3, wf, 0.2) for wf in IDS[::50]]
    assert [arm_of(3, wf, 0.2) for wf in IDS[::50]] == first
    # Another interpreter, with another string-hash seed: a hash of the process's own (like
    # hash()) would move workflows between arms when they resume elsewhere.
    probe = (
        "import json, sys; from automatos.prompts.resolve import arm_of; "
        "print(json.dumps([arm_of(3, wf, 0.2) for wf in json.load(sys.stdin)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        input=json.dumps(IDS[::50]),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == first


def test_tests_split_independently() -> None:
    """Two tests' arms agree as often as independent draws would: a workflow in one test's
    candidate arm is not more likely to be in another's."""
    share = 0.2
    both = sum(
        arm_of(1, wf, share) == "candidate" and arm_of(2, wf, share) == "candidate" for wf in IDS
    )
    assert abs(both / len(IDS) - share * share) <= 0.01


def test_a_larger_share_keeps_the_workflows_of_a_smaller_one() -> None:
    small = {wf for wf in IDS if arm_of(4, wf, 0.1) == "candidate"}
    large = {wf for wf in IDS if arm_of(4, wf, 0.3) == "candidate"}
    assert small < large


def _version(slug: str, version: int, text: str) -> PromptVersion:
    return PromptVersion(
        slug=slug, version=version, text=text, created_at=datetime.now(UTC), active=version == 1
    )


def _state(share: float) -> PromptState:
    test = AbTest(
        id=5, slug="synthesiser", control_version=1, candidate_version=2, share=share,
        min_per_arm=30, looks=4, status="running", started_at=datetime.now(UTC),
    )  # fmt: skip
    return PromptState(
        active={
            "synthesiser": _version("synthesiser", 1, "Combine the results."),
            "judge": _version("judge", 3, CATALOG["judge"].text),
        },
        tests=[test],
        candidates={5: _version("synthesiser", 2, "Combine the results, briefly.")},
    )


def test_the_candidate_arm_gets_the_candidate_text() -> None:
    state = _state(share=0.5)
    by_arm = {arm_of(5, wf, 0.5): wf for wf in IDS[:20]}
    assert set(by_arm) == {"control", "candidate"}
    candidate = PromptSet.from_state(state, by_arm["candidate"])
    control = PromptSet.from_state(state, by_arm["control"])
    assert candidate.render("synthesiser") == "Combine the results, briefly."
    assert control.render("synthesiser") == "Combine the results."
    chosen = candidate.choice("synthesiser")
    assert (chosen.version, chosen.test_id, chosen.arm) == (2, 5, "candidate")
    chosen = control.choice("synthesiser")
    assert (chosen.version, chosen.test_id, chosen.arm) == (1, 5, "control")
    judge = candidate.choice("judge")
    assert (judge.version, judge.test_id, judge.arm) == (3, None, None)


def test_uses_name_the_versions_and_arms_of_the_prompts_used() -> None:
    wf = next(wf for wf in IDS if arm_of(5, wf, 0.2) == "candidate")
    prompts = PromptSet.from_state(_state(share=0.2), wf)
    assert prompts.uses() == {}
    prompts.render("synthesiser")
    prompts.render("decomposer", {"max_subtasks": 4})  # not in the registry: built in
    uses = prompts.uses()
    assert list(uses) == ["decomposer", "synthesiser"]
    assert (uses["synthesiser"].version, uses["synthesiser"].test_id) == (2, 5)
    assert uses["synthesiser"].arm == "candidate"
    assert (uses["decomposer"].version, uses["decomposer"].arm) == (0, None)


def test_a_plugin_asking_for_an_unknown_slug_or_leaving_out_a_field_gets_a_prompt_error() -> None:
    prompts = PromptSet()
    with pytest.raises(PromptError, match="unknown prompt slug 'summariser'; the slugs are"):
        prompts.render("summariser")
    with pytest.raises(PromptError, match="uses the field 'step', which was not given"):
        prompts.render("executor", {"request": "r", "step_id": "a"})
