"""Checks and analysis of a subtask dependency graph.

:func:`build_plan` turns subtask specs into a :class:`~automatos.domain.Plan` or raises one
of the :class:`~automatos.errors.PlanError` classes naming what is wrong. Every walk here is
iterative, so plans of any depth cost no recursion, and every pass is linear in the edges.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence

from automatos.domain.plan import GraphMetadata, Plan, Subtask, SubtaskSpec
from automatos.errors import (
    CycleError,
    DanglingDependencyError,
    DuplicateSubtaskError,
    PlanError,
    PlanLimitError,
    SelfDependencyError,
)
from automatos.settings import PlanLimits

__all__ = ["build_plan", "check_structure", "topological_order"]

_EPS = 1e-9


def build_plan(specs: Sequence[SubtaskSpec], limits: PlanLimits | None = None) -> Plan:
    """Check ``specs`` and return the analysed plan.

    Raises:
        PlanError: a subclass naming the first problem found: an empty plan, a limit
            exceeded, duplicate ids, self-dependencies, dangling dependencies or a cycle.
    """
    limits = limits or PlanLimits()
    check_structure(specs, limits)
    order = topological_order(specs)
    return _analyse(specs, order, limits)


def check_structure(specs: Sequence[SubtaskSpec], limits: PlanLimits) -> None:
    """Everything but cycles and depth: size limits, duplicates, self-loops, dangling edges."""
    if not specs:
        raise PlanError("the plan has no subtasks")
    if len(specs) > limits.max_subtasks:
        raise PlanLimitError(
            f"the plan has {len(specs)} subtasks; the limit is {limits.max_subtasks} "
            "(setting plan.max_subtasks)"
        )
    for spec in specs:
        longest = max(len(spec.description), len(spec.expected_output))
        if longest > limits.max_field_chars:
            raise PlanLimitError(
                f"subtask {spec.id!r} has a field of {longest} characters; the limit is "
                f"{limits.max_field_chars} (setting plan.max_field_chars)"
            )
    dupes = [sid for sid, n in Counter(s.id for s in specs).items() if n > 1]
    if dupes:
        raise DuplicateSubtaskError(dupes)
    selfish = [s.id for s in specs if s.id in s.depends_on]
    if selfish:
        raise SelfDependencyError(selfish)
    ids = {s.id for s in specs}
    missing = {s.id: [d for d in s.depends_on if d not in ids] for s in specs}
    missing = {sid: deps for sid, deps in missing.items() if deps}
    if missing:
        raise DanglingDependencyError(missing)
    fanout = Counter(d for s in specs for d in set(s.depends_on))
    if fanout:
        widest, width = fanout.most_common(1)[0]
        if width > limits.max_fanout:
            raise PlanLimitError(
                f"{width} subtasks depend on {widest!r}; the limit is {limits.max_fanout} "
                "(setting plan.max_fanout)"
            )


def topological_order(specs: Sequence[SubtaskSpec]) -> list[str]:
    """Ids in an order where every subtask follows its dependencies (Kahn's algorithm).

    Raises:
        CycleError: naming one cycle, in execution order, its first id repeated last.
    """
    deps = {s.id: set(s.depends_on) for s in specs}
    remaining = {sid: len(d) for sid, d in deps.items()}
    successors: dict[str, list[str]] = {sid: [] for sid in deps}
    for sid, ds in deps.items():
        for d in ds:
            successors[d].append(sid)
    ready = deque(s.id for s in specs if not remaining[s.id])
    order: list[str] = []
    while ready:
        sid = ready.popleft()
        order.append(sid)
        for succ in successors[sid]:
            remaining[succ] -= 1
            if not remaining[succ]:
                ready.append(succ)
    if len(order) < len(deps):
        raise CycleError(_find_cycle(deps, {sid for sid, n in remaining.items() if n}))
    return order


def _find_cycle(deps: dict[str, set[str]], stuck: set[str]) -> list[str]:
    # Every stuck subtask waits on at least one stuck dependency, so walking stuck
    # dependencies from any stuck subtask must come back to a subtask already seen.
    start = min(stuck)
    path: list[str] = []
    seen: dict[str, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(d for d in deps[node] if d in stuck)
    cycle = path[seen[node] :]
    cycle.reverse()  # walked along "depends on"; report in execution order
    return [*cycle, cycle[0]]


def _analyse(specs: Sequence[SubtaskSpec], order: list[str], limits: PlanLimits) -> Plan:
    by_id = {s.id: s for s in specs}
    succs: dict[str, list[str]] = {sid: [] for sid in by_id}
    for s in specs:
        for d in dict.fromkeys(s.depends_on):
            succs[d].append(s.id)
    depth: dict[str, int] = {}
    start: dict[str, float] = {}
    for sid in order:
        preds = by_id[sid].depends_on
        depth[sid] = 1 + max((depth[p] for p in preds), default=0)
        start[sid] = max((start[p] + by_id[p].complexity for p in preds), default=0.0)
    deepest = max(depth.values())
    if deepest > limits.max_depth:
        raise PlanLimitError(
            f"the plan has a chain of {deepest} dependent subtasks; the limit is "
            f"{limits.max_depth} (setting plan.max_depth)"
        )
    finish = {sid: start[sid] + by_id[sid].complexity for sid in order}
    total = max(finish.values())
    latest: dict[str, float] = {}
    for sid in reversed(order):
        latest_finish = min((latest[n] for n in succs[sid]), default=total)
        latest[sid] = latest_finish - by_id[sid].complexity
    critical = _critical_path(order, by_id, succs, start, finish, latest, total)
    layers: list[list[str]] = [[] for _ in range(deepest)]
    for s in specs:
        layers[depth[s.id] - 1].append(s.id)
    subtasks = tuple(
        Subtask.model_construct(
            **dict(s),
            graph=GraphMetadata.model_construct(
                layer=depth[s.id] - 1,
                depth=depth[s.id],
                predecessors=tuple(dict.fromkeys(s.depends_on)),
                successors=tuple(succs[s.id]),
                earliest_start=start[s.id],
                slack=max(0.0, latest[s.id] - start[s.id]),
                on_critical_path=latest[s.id] - start[s.id] < _EPS,
            ),
        )
        for s in specs
    )
    return Plan.model_construct(
        subtasks=subtasks,
        layers=tuple(tuple(layer) for layer in layers),
        critical_path=tuple(critical),
        critical_path_cost=total,
    )


def _critical_path(
    order: list[str],
    by_id: dict[str, SubtaskSpec],
    succs: dict[str, list[str]],
    start: dict[str, float],
    finish: dict[str, float],
    latest: dict[str, float],
    total: float,
) -> list[str]:
    node = next(
        sid for sid in order if not by_id[sid].depends_on and latest[sid] - start[sid] < _EPS
    )
    path = [node]
    while finish[node] < total - _EPS:
        node = next(
            n
            for n in succs[node]
            if abs(start[n] - finish[node]) < _EPS and latest[n] - start[n] < _EPS
        )
        path.append(node)
    return path
