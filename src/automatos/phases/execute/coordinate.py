"""Stage 4b, coordination: findings shared between dependent groups of subtasks.

:class:`CoordinateStage` runs just before execution and opens the workflow's shared context
(:mod:`automatos.field`) when coordination is on and the plan has more than one layer (with
one, no subtask could read what another shared): the runner's when it offers one (the queued
runner's, in Redis), else an in-process one (:func:`open_shared`). The dispatcher then works
through a :class:`Coordinator`:

- a subtask with a later layer after it is asked to end its answer with its findings
  (:func:`~automatos.field.findings.instruction`); the last layer is not (no one would read
  them), nor a one-step workflow's only subtask;
- when such a subtask succeeds, the findings it shares are taken out of its answer (the
  committed output does not carry them), checked against the earlier ones for
  contradictions, added to the shared context, emitted as
  :class:`~automatos.domain.event.FindingShared` and kept in ``state.execution.findings``,
  all before its result is committed: its dependents, which start on that commit, see them.
  A finding that repeats one shared already (an agent passing on what it read) is not
  shared again. Items beyond ``coordination.max_findings`` are not shared: they stay in the
  committed answer, with a warning;
- when a subtask starts, its prompt quotes the findings shared by then by subtasks of earlier
  layers (not only its own dependencies: in a chain g1 → g2 → g3, g3 reads g1's), with their
  provenance, within a share of the quoted-output budget. When they do not all fit, the
  findings of its own ancestors come first, nearest layer first.

The shared context is closed when the workflow's execution is over, however it ends, by
:func:`close_shared`: bounded in time, and never the workflow's failure.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Sequence

from automatos.domain.collaboration import Finding
from automatos.domain.event import FindingShared
from automatos.domain.level import Phase
from automatos.domain.plan import Subtask
from automatos.errors import describe_exception, describe_value
from automatos.field.base import SharedContext
from automatos.field.contradiction import ContradictionIndex
from automatos.field.findings import (
    StatedFinding,
    extract_findings,
    finding_line,
    findings_budget,
    instruction,
)
from automatos.field.memory import InProcessSharedContext
from automatos.phases.contracts import ASSIGNMENTS, PLAN, SHARED
from automatos.phases.execute.prompt import is_whole_request
from automatos.phases.state import WorkflowState

__all__ = [
    "CLOSE_TIMEOUT_S",
    "CoordinateStage",
    "Coordinator",
    "close_shared",
    "open_shared",
]

CLOSE_TIMEOUT_S = 5.0
"""How long :func:`close_shared` waits for the shared context to close."""


class CoordinateStage:
    """Stage 4b: opens the workflow's shared context, for the execute stage to use."""

    name = "coordinate"
    phase = Phase.EXECUTE
    reads = frozenset({PLAN, ASSIGNMENTS})
    writes = frozenset({SHARED})

    async def run(self, state: WorkflowState) -> None:
        """Open the workflow's shared context, unless coordination is off, the plan has a
        single layer, or the workflow has a shared context already: the runner's, when it
        offers one (:func:`open_shared`), else an in-process one."""
        if not state.runtime.settings.coordination.enabled:
            return
        if len(state.require_plan().layers) < 2:
            return
        if state.execution.shared is None:
            state.execution.shared = await open_shared(state)


async def open_shared(state: WorkflowState) -> SharedContext:
    """The shared context of ``state``'s workflow: the runner's when it has a
    ``shared_context(workflow_id)`` method (the queued runner's is in Redis, so that a
    resumed workflow and every process see the same findings), else an in-process one.

    A runner whose method fails, takes longer than ``coordination.io_timeout_s`` (when it
    returns an awaitable) or returns something that is not a
    :class:`~automatos.field.base.SharedContext` costs the sharing across processes, with a
    warning, not the workflow: the findings are shared in process.
    """
    runner = state.runtime.runner
    hook = getattr(runner, "shared_context", None)
    if not callable(hook):
        return InProcessSharedContext()
    runner_name = type(runner).__name__
    timeout_s = state.runtime.settings.coordination.io_timeout_s
    try:
        opened: object = hook(state.workflow_id)
        if inspect.isawaitable(opened):
            async with asyncio.timeout(timeout_s):
                opened = await opened
    except TimeoutError:
        problem = f"it did not open within {timeout_s:g} s"
    except Exception as exc:  # a plugin's failure of any type
        problem = describe_exception(exc)
    else:
        if isinstance(opened, SharedContext):
            return opened
        problem = f"it returned {describe_value(opened)}, not a SharedContext"
    state.warnings.append(
        f"the shared context of runner {runner_name} could not be opened, the findings are "
        f"shared in this process only: {problem}"
    )
    return InProcessSharedContext()


async def close_shared(state: WorkflowState, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """Close the workflow's shared context, if it has one (again is harmless: closing is
    idempotent).

    A context that fails to close, or does not within ``timeout_s`` seconds, is a warning in
    ``state.warnings`` (the findings were read already), not the workflow's failure: no
    exception is raised. Only a cancellation of the caller while it waits goes through.
    """
    shared = state.execution.shared
    if shared is None:
        return
    state.execution.shared = None  # closed once: a failure is one warning, not one per caller
    try:
        async with asyncio.timeout(timeout_s):
            await shared.aclose()
    except TimeoutError:
        state.warnings.append(
            f"the workflow's shared context could not be closed: it did not close within "
            f"{timeout_s:g} s"
        )
    except Exception as exc:  # a plugin's failure of any type
        state.warnings.append(
            f"the workflow's shared context could not be closed: {describe_exception(exc)}"
        )


class Coordinator:
    """The dispatcher's side of stage 4b for one workflow (see the module's docstring).

    The orchestrator is the context's only writer: sharing holds a lock from the check for
    contradictions to the last add, so that a finding is always checked against every
    finding numbered before it.
    """

    def __init__(self, state: WorkflowState, shared: SharedContext) -> None:
        self.state = state
        self.shared = shared
        settings = state.runtime.settings
        self.max_findings = settings.coordination.max_findings
        self.max_chars = settings.coordination.max_finding_chars
        self.budget = findings_budget(settings.execution.max_quoted_chars)
        self.io_timeout_s = settings.coordination.io_timeout_s
        """Longest one read or write of the shared context may take."""
        """What quoted findings may take of one prompt."""
        self.instruction = instruction(
            self.max_findings, state.preparation.prompts.choice("findings").text
        )
        plan = state.require_plan()
        self._subtasks = plan.by_id
        self._last_layer = len(plan.layers) - 1
        self._request = state.request.text
        self._lock = asyncio.Lock()
        self._pending: dict[str, tuple[tuple[StatedFinding, ...], int]] = {}
        """Findings of answers not yet accepted, by subtask, with the number of items beyond
        the limit left in the answer."""
        self._index = ContradictionIndex()
        self._texts: set[str] = set()
        """The text of every finding read, normalised: a repeat is not shared again."""
        self._read: list[tuple[Finding, int, int]] = []
        """Every finding read from the context so far, in id order, with the layer of its
        subtask and the length of its line in a prompt."""

    def asks(self, subtask: Subtask) -> bool:
        """Whether ``subtask`` is asked for findings: some later layer may read them."""
        return subtask.graph.layer < self._last_layer and not is_whole_request(
            self._request, subtask
        )

    def take(self, subtask_id: str, answer: str) -> str:
        """``answer`` without the findings it shares; those (bounded by the settings) are
        kept for :meth:`share`, should the answer be accepted. Items beyond the bound stay
        in the answer."""
        extracted = extract_findings(answer, self.max_findings, self.max_chars)
        if extracted.findings or extracted.left:
            self._pending[subtask_id] = (extracted.findings, extracted.left)
        else:
            self._pending.pop(subtask_id, None)  # a retry's answer replaces a rejected one's
        return extracted.answer

    async def visible(self, subtask: Subtask) -> list[Finding]:
        """The findings ``subtask``'s prompt quotes: those of earlier layers, shared by now,
        most important first when they would not all fit the budget.

        A shared context that cannot be read costs the findings not read yet, with a
        warning, not the subtask: its prompt quotes what was read before.
        """
        layer = subtask.graph.layer
        if layer == 0:
            return []
        try:
            await self._catch_up()
        except Exception as exc:
            self.state.warnings.append(
                f"subtask {subtask.id!r}: the shared context {self._context_name} could not be "
                f"read, its prompt quotes the findings read before: {describe_exception(exc)}"
            )
        seen = [(f, at) for f, at, _ in self._read if at < layer]
        if sum(size for _, at, size in self._read if at < layer) <= self.budget:
            return [f for f, _ in seen]
        ancestors = self._ancestors(subtask)
        seen.sort(key=lambda item: (item[0].subtask_id not in ancestors, -item[1], item[0].id))
        return [f for f, _ in seen]

    async def share(self, subtask_id: str, agent: str) -> None:
        """Share what ``subtask_id``'s accepted answer stated (see :meth:`take`), checked for
        contradictions.

        A shared context that fails costs the findings, with a warning, not the subtask:
        its answer stands. Items its answer kept beyond the bound are a warning too.
        """
        stated, left = self._pending.pop(subtask_id, ((), 0))
        state = self.state
        if left:
            state.warnings.append(
                f"subtask {subtask_id!r}: {left} finding{'s' if left != 1 else ''} beyond the "
                f"limit of {self.max_findings} {'were' if left != 1 else 'was'} not shared and "
                "left in its answer (setting coordination.max_findings)"
            )
        if not stated:
            return
        try:
            async with self._lock:
                await self._catch_up()
                for item in stated:
                    if _normal(item.text) in self._texts:
                        continue
                    against = self._index.check(item.kind, item.text)
                    last = self._last_id()
                    async with asyncio.timeout(self.io_timeout_s):
                        finding = await self.shared.add(
                            item.kind, item.text, subtask_id, agent, against
                        )
                    self._check(finding)
                    if finding.id <= last:
                        raise ValueError(
                            f"{self._context_name} numbered a new finding {finding.id} after "
                            f"{last}: the ids it hands out must increase"
                        )
                    self._absorb([finding])
                    state.execution.findings.append(finding)
                    state.bus.emit(
                        FindingShared,
                        finding=finding.id,
                        finding_kind=finding.kind,
                        text=finding.text,
                        subtask_id=subtask_id,
                        agent=agent,
                        contradicts=list(finding.contradicts),
                    )
        except Exception as exc:
            state.warnings.append(
                f"subtask {subtask_id!r}: its findings could not be shared through "
                f"{self._context_name}: {describe_exception(exc)}"
            )

    async def _catch_up(self) -> None:
        """Read what was shared since the last read (a remote context may hold more than
        this process added)."""
        async with asyncio.timeout(self.io_timeout_s):
            found = await self.shared.findings(after=self._last_id())
        if not isinstance(found, list):
            raise TypeError(f"findings() returned {describe_value(found)}, not a list")
        for finding in found:
            self._check(finding)
        self._absorb(found)

    def _check(self, finding: object) -> None:
        """Refuse what a shared context plugin should never return: a finding is a
        :class:`Finding` with an id above 0 (the ids it hands out increase)."""
        if not isinstance(finding, Finding) or finding.id < 1:
            raise TypeError(
                f"{self._context_name} returned {describe_value(finding)} for a finding: it "
                "must return Finding objects numbered from 1"
            )

    def _last_id(self) -> int:
        return self._read[-1][0].id if self._read else 0

    @property
    def _context_name(self) -> str:
        return type(self.shared).__name__

    def _absorb(self, findings: Sequence[Finding]) -> None:
        # Two readers may have fetched the same findings meanwhile: ids say what is new.
        subtasks = self._subtasks
        for finding in findings:
            if finding.id <= self._last_id():
                continue
            source = subtasks.get(finding.subtask_id)
            # A finding of a subtask this plan does not know (another writer's) is of no
            # earlier layer: no prompt quotes it.
            at = source.graph.layer if source is not None else 1 << 30
            self._read.append((finding, at, len(finding_line(finding)) + 1))
            self._index.add(finding.id, finding.kind, finding.text)
            self._texts.add(_normal(finding.text))

    def _ancestors(self, subtask: Subtask) -> set[str]:
        """Every subtask ``subtask`` depends on, directly or not (only computed when the
        findings would not all fit)."""
        subtasks = self._subtasks
        found: set[str] = set()
        queue = deque(subtask.graph.predecessors)
        while queue:
            sid = queue.popleft()
            if sid not in found:
                found.add(sid)
                queue.extend(subtasks[sid].graph.predecessors)
        return found


def _normal(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(".")
