"""Prometheus metrics of a server (``GET /metrics``), from the workflows' own events and
results: one registry per application, so two servers in one process do not mix."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["ServerMetrics"]


class ServerMetrics:
    """The counters, fed by :meth:`observe` (each event) and :meth:`finished` (each result)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.workflows = Counter(
            "automatos_workflows",
            "Workflows that ended, by status.",
            ["status"],
            registry=self.registry,
        )
        self.running = Gauge(
            "automatos_workflows_running", "Workflows running now.", registry=self.registry
        )
        self.subtask_seconds = Histogram(
            "automatos_subtask_seconds",
            "How long subtasks took, by final status.",
            ["status"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.tokens = Counter(
            "automatos_tokens", "Model tokens, by direction.", ["direction"], registry=self.registry
        )
        self.cost = Counter(
            "automatos_cost_usd", "Dollars of priced model calls.", registry=self.registry
        )
        self.call_errors = Counter(
            "automatos_model_call_errors",
            "Attempts that failed (retried or final), by subtask status.",
            registry=self.registry,
        )

    def observe(self, event: dict[str, Any]) -> None:
        """Count one event (as :func:`~automatos.domain.event.event_to_dict` gives it)."""
        kind = event["kind"]
        if kind == "workflow_started":
            self.running.inc()
        elif kind == "workflow_finished":
            self.running.dec()
            self.workflows.labels(status=event["status"]).inc()
        elif kind == "subtask_finished":
            self.subtask_seconds.labels(status=event["status"]).observe(event["elapsed_s"])
            if event.get("error"):
                self.call_errors.inc()
        elif kind == "subtask_retried":
            self.call_errors.inc()

    def finished(self, tokens_in: int, tokens_out: int, cost_usd: float) -> None:
        """Count a finished workflow's tokens and cost."""
        self.tokens.labels(direction="in").inc(tokens_in)
        self.tokens.labels(direction="out").inc(tokens_out)
        self.cost.inc(cost_usd)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
