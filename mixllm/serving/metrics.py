"""Prometheus metrics of the service: the instruments, the endpoint labels and the gauges
computed at scrape time."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

ENDPOINTS = ("/route", "/feedback", "/v1/chat/completions", "/llms", "/healthz", "/metrics")


@dataclass
class ServiceMetrics:
    """Prometheus instruments of the service (process-wide, multiprocess-safe)."""

    registry: Any
    requests: Any
    decisions: Any
    decision_seconds: Any
    feedback: Any
    backend_errors: Any
    retrain_triggers: Any

    def exposition(self, already: str = "") -> str:
        """Our metric families in text format, leaving out those ``already`` shows."""
        from prometheus_client import generate_latest

        text = generate_latest(self.registry).decode("utf-8")
        blocks = ("\n" + text).split("\n# HELP ")[1:]
        names = [b.split(" ", 1)[0] for b in blocks]
        kept = [
            b
            for b, name in zip(blocks, names, strict=True)
            if not name.endswith("_created") and f"# TYPE {name} " not in already
        ]
        return "".join(f"# HELP {b.rstrip()}\n" for b in kept)


@cache
def service_metrics() -> ServiceMetrics:
    """The instruments, created once per process in a registry of their own.

    prometheus_client is imported here, not at module import: BentoML sets
    PROMETHEUS_MULTIPROC_DIR in each worker after importing the service module, and the
    client picks its storage mode when first imported. In multiprocess mode BentoML's
    /metrics aggregates these across workers; otherwise ``exposition`` adds them.
    """
    from prometheus_client import CollectorRegistry, Counter, Histogram

    registry = CollectorRegistry(auto_describe=True)
    return ServiceMetrics(
        registry=registry,
        requests=Counter(
            "mixllm_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=registry,
        ),
        decisions=Counter(
            "mixllm_decisions", "Routing decisions by chosen LLM", ["llm"], registry=registry
        ),
        decision_seconds=Histogram(
            "mixllm_decision_seconds",
            "Time to take one routing decision (embedding included)",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        ),
        feedback=Counter("mixllm_feedback", "Feedback rows committed", ["kind"], registry=registry),
        backend_errors=Counter(
            "mixllm_backend_errors", "Backend failures", ["backend", "kind"], registry=registry
        ),
        retrain_triggers=Counter(
            "mixllm_retrain_triggers",
            "Retraining runs requested",
            ["outcome"],
            registry=registry,
        ),
    )


def endpoint_label(path: str) -> str | None:
    """The metrics label of a request path (bounded set), None for paths we do not count."""
    if path in ENDPOINTS:
        return path
    if path.startswith("/llms/"):
        return "/llms/{name}"
    return None


def count_request(path: str, status: int) -> None:
    """Count one HTTP request on one of our endpoints."""
    label = endpoint_label(path)
    if label is not None:
        service_metrics().requests.labels(endpoint=label, status=str(status)).inc()


def gauge(name: str, help_text: str, samples: list[tuple[str, float]]) -> list[str]:
    """Text-format lines of one gauge: HELP, TYPE, then ``name{labels} value`` per sample."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    return lines + [f"{name}{labels} {value}" for labels, value in samples]


def scrape_text(
    content: str,
    metrics: ServiceMetrics,
    *,
    feedback_rows: int | None,
    champion_ok: bool,
    version: str | None,
    in_flight: dict[str, int],
) -> str:
    """``content`` (BentoML's exposition) plus our instruments and the scrape-time gauges."""
    lines = [content.rstrip("\n")] if content.strip() else []
    ours = metrics.exposition(content).rstrip("\n")
    if ours:
        lines.append(ours)
    if feedback_rows is not None:
        lines += gauge(
            "mixllm_feedback_rows",
            "Feedback rows in the store (all workers).",
            [("", feedback_rows)],
        )
    lines += gauge(
        "mixllm_champion_ok",
        "1 if the registry's champion is the router serving.",
        [("", 1 if champion_ok else 0)],
    )
    if version is not None:
        lines += gauge(
            "mixllm_router_version",
            "Version of the router serving (as a label).",
            [(f'{{version="{version}"}}', 1)],
        )
    lines += gauge(
        "mixllm_in_flight",
        "Requests being answered per LLM (this worker).",
        [(f'{{llm="{_label(k)}"}}', v) for k, v in sorted(in_flight.items())],
    )
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
