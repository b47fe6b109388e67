"""Checks and analysis of a subtask dependency graph.

:func:`build_plan` turns subtask specs into a :class:`~automatos.domain.Plan` or raises one
of the :class:`~automatos.errors.PlanError` classes naming what is wrong. Every walk is
iterative, so plans of any depth cost no recursion, and every pass is linear in the edges:
planning runs before the first subtask can start, so it is kept to a few microseconds a
subtask.
"""

from __future__ import annotations

from collections import Counter
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

__all__ = ["build_plan", "topological_order"]

_EPS = 1e-9


def build_plan(specs: Sequence[SubtaskSpec], limits: PlanLimits | None = None) -> Plan:
    """Check ``specs`` and return the analysed plan.

    Raises:
        PlanError: a subclass naming the first problem found: an empty plan, a limit
            exceeded, duplicate ids, self-dependencies, dangling dependencies or a cycle.
    """
    limits = limits or PlanLimits()
    deps = _checked_dependencies(specs, limits)
    order = topological_order([s.id for s in specs], deps)
    return _analyse(specs, deps, order, limits)


def _checked_dependencies(
    specs: Sequence[SubtaskSpec], limits: PlanLimits
) -> dict[str, tuple[str, ...]]:
    """Each subtask's dependencies, deduplicated, after the structural checks."""
    if not specs:
        raise PlanError("the plan has no subtasks")
    if len(specs) > limits.max_subtasks:
        raise PlanLimitError(
            f"the plan has {len(specs)} subtasks; the limit is {limits.max_subtasks} "
            "(setting plan.max_subtasks)"
        )
    deps: dict[str, tuple[str, ...]] = {}
    max_chars = limits.max_field_chars
    for s in specs:
        if len(s.description) > max_chars or len(s.expected_output) > max_chars:
            longest = max(len(s.description), len(s.expected_output))
            raise PlanLimitError(
                f"subtask {s.id!r} has a field of {longest} characters; the limit is "
                f"{max_chars} (setting plan.max_field_chars)"
            )
        d = s.depends_on
        deps[s.id] = tuple(dict.fromkeys(d)) if len(d) > 1 else d
    if len(deps) != len(specs):
        raise DuplicateSubtaskError([i for i, n in Counter(s.id for s in specs).items() if n > 1])
    linked = [(sid, d) for sid, d in deps.items() if d]
    selfish = [sid for sid, d in linked if sid in d]
    if selfish:
        raise SelfDependencyError(selfish)
    missing = {sid: [x for x in d if x not in deps] for sid, d in linked}
    missing = {sid: xs for sid, xs in missing.items() if xs}
    if missing:
        raise DanglingDependencyError(missing)
    fanout = Counter(x for _, d in linked for x in d)
    if fanout:
        widest, width = fanout.most_common(1)[0]
        if width > limits.max_fanout:
            raise PlanLimitError(
                f"{width} subtasks depend on {widest!r}; the limit is {limits.max_fanout} "
                "(setting plan.max_fanout)"
            )
    return deps


def topological_order(ids: Sequence[str], deps: dict[str, tuple[str, ...]]) -> list[str]:
    """Ids in an order where every subtask follows its dependencies (Kahn's algorithm).

    Raises:
        CycleError: naming one cycle, in execution order, its first id repeated last.
    """
    order = [sid for sid in ids if not deps[sid]]
    remaining = {sid: len(d) for sid, d in deps.items() if d}
    if not remaining:
        return order
    successors: dict[str, list[str]] = {}
    for sid, d in deps.items():
        for x in d:
            successors.setdefault(x, []).append(sid)
    i = 0
    while i < len(order):
        for succ in successors.get(order[i], ()):
            remaining[succ] -= 1
            if not remaining[succ]:
                order.append(succ)
        i += 1
    if len(order) < len(ids):
        raise CycleError(_find_cycle(deps, {sid for sid, n in remaining.items() if n}))
    return order


def _find_cycle(deps: dict[str, tuple[str, ...]], stuck: set[str]) -> list[str]:
    # Every stuck subtask waits on at least one stuck dependency, so walking stuck
    # dependencies from any stuck subtask must come back to a subtask already seen.
    path: list[str] = []
    seen: dict[str, int] = {}
    node = min(stuck)
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(x for x in deps[node] if x in stuck)
    cycle = path[seen[node] :]
    cycle.reverse()  # walked along "depends on"; report in execution order
    first = cycle.index(min(cycle))
    cycle = cycle[first:] + cycle[:first]
    return [*cycle, cycle[0]]


def _analyse(
    specs: Sequence[SubtaskSpec],
    deps: dict[str, tuple[str, ...]],
    order: list[str],
    limits: PlanLimits,
) -> Plan:
    # One forward pass (depth, earliest start and finish) and one backward pass (latest
    # start); subtasks without dependencies, the bulk of wide plans, take the short branch.
    cost = {s.id: float(s.complexity) for s in specs}
    succs: dict[str, list[str]] = {}
    for sid, d in deps.items():
        for x in d:
            if x in succs:
                succs[x].append(sid)
            else:
                succs[x] = [sid]
    depth: dict[str, int] = {}
    start: dict[str, float] = {}
    finish: dict[str, float] = {}
    for sid in order:
        preds = deps[sid]
        if preds:
            depth[sid] = 1 + max([depth[p] for p in preds])
            begin = start[sid] = max([finish[p] for p in preds])
        else:
            depth[sid] = 1
            begin = start[sid] = 0.0
        finish[sid] = begin + cost[sid]
    deepest = max(depth.values())
    if deepest > limits.max_depth:
        raise PlanLimitError(
            f"the plan has a chain of {deepest} dependent subtasks; the limit is "
            f"{limits.max_depth} (setting plan.max_depth)"
        )
    total = max(finish.values())
    latest: dict[str, float] = {}
    for sid in reversed(order):
        after = succs.get(sid)
        if after:
            latest[sid] = min([latest[n] for n in after]) - cost[sid]
        else:
            latest[sid] = total - cost[sid]
    layers: list[list[str]] = [[] for _ in range(deepest)]
    subtasks: list[Subtask] = []
    no_succs: tuple[str, ...] = ()
    append = subtasks.append
    for s in specs:
        sid = s.id
        level = depth[sid]
        begin = start[sid]
        slack = latest[sid] - begin
        layers[level - 1].append(sid)
        after = succs.get(sid)
        append(
            Subtask(
                sid,
                s.description,
                s.depends_on,
                s.requires_context,
                s.complexity,
                s.expected_output,
                s.agent,
                GraphMetadata(
                    level - 1,
                    level,
                    deps[sid],
                    tuple(after) if after else no_succs,
                    begin,
                    slack if slack > 0.0 else 0.0,
                    slack < _EPS,
                ),
            )
        )
    return Plan.model_construct(
        subtasks=tuple(subtasks),
        layers=tuple(tuple(layer) for layer in layers),
        critical_path=tuple(_critical_path(order, deps, succs, start, finish, latest, total)),
        critical_path_cost=total,
    )


def _critical_path(
    order: list[str],
    deps: dict[str, tuple[str, ...]],
    succs: dict[str, list[str]],
    start: dict[str, float],
    finish: dict[str, float],
    latest: dict[str, float],
    total: float,
) -> list[str]:
    # A critical subtask that ends before the plan does has a critical successor that
    # starts the moment it finishes; follow those from a critical source.
    node = next(s for s in order if not deps[s] and latest[s] - start[s] < _EPS)
    path = [node]
    while finish[node] < total - _EPS:
        node = next(
            n
            for n in succs[node]
            if abs(start[n] - finish[node]) < _EPS and latest[n] - start[n] < _EPS
        )
        path.append(node)
    return path
