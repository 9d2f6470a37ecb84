"""Scale-out part of `mixllm benchmark-service`: /route throughput at concurrency 16 with 1, 2
and 4 workers (MIXLLM_WORKERS) and with 2 replicas (two `mixllm serve` on two ports, one
feedback database, the client round-robin over both, the online state shared through
MIXLLM_STATE_URL on Redis under a namespace of the run's own, deleted afterwards).
Every service is started in its own process group and stopped by its PID."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from flows.bench_process import free_port, service_env, start_service, stop_service, wait_ready

READY_TIMEOUT_S = 600.0
WORKER_COUNTS = (1, 2, 4)
REDIS_URL = "redis://127.0.0.1:6379/0"


@contextmanager
def services(n: int, data: str | None, env_extra: dict[str, str]) -> Iterator[list[str]]:
    """``n`` `mixllm serve` replicas sharing one feedback DB; yields their base URLs."""
    tmp = Path(tempfile.mkdtemp(prefix="mixllm-bench-scale-"))
    procs: list[subprocess.Popen] = []
    try:
        bases = []
        for i in range(n):
            port = free_port()
            env = service_env(tmp / f"home{i}")
            env.update(MIXLLM_FEEDBACK_URL=f"sqlite:///{tmp / 'feedback.db'}", **env_extra)
            log = tmp / f"serve{i}.log"
            procs.append(start_service(port, env, log, data))
            bases.append((f"http://127.0.0.1:{port}", procs[-1], log))
        for base, proc, log in bases:
            wait_ready(base, proc, log, READY_TIMEOUT_S)
        yield [b for b, _, _ in bases]
    finally:
        for proc in procs:
            stop_service(proc)
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def redis_namespace() -> Iterator[str]:
    """A state namespace of this run's own on REDIS_URL; its keys are deleted afterwards."""
    import uuid

    import redis

    namespace = f"mixllm-bench-{uuid.uuid4().hex[:8]}"
    try:
        yield namespace
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{namespace}:*"):
            client.delete(key)


def _throughput(
    urls: list[str], warm: list[str], queries: list[str], requests: int, timeout: float
) -> dict[str, Any]:
    from mixllm.tools import loadtest

    if warm:
        loadtest.route_load(urls, warm, 16, len(warm), timeout)
    return loadtest.route_load(urls, queries, 16, requests, timeout).to_dict()


def measure_scale(
    data: str | None, warm: list[str], queries: list[str], requests: int, timeout: float
) -> dict[str, Any]:
    """Throughput at concurrency 16 per worker count, and with 2 replicas."""
    rows: dict[str, Any] = {}
    for workers in WORKER_COUNTS:
        typer.echo(f"Scale: {workers} worker(s), {requests} requests at concurrency 16 ...")
        with services(1, data, {"MIXLLM_WORKERS": str(workers)}) as urls:
            rows[f"workers_{workers}"] = _throughput(urls, warm, queries, requests, timeout)
    typer.echo(f"Scale: 2 replicas sharing state on {REDIS_URL} ...")
    with redis_namespace() as namespace:
        extra = {
            "MIXLLM_WORKERS": "1",
            "MIXLLM_STATE_URL": REDIS_URL,
            "MIXLLM_STATE_NAMESPACE": namespace,
        }
        with services(2, data, extra) as urls:
            rows["replicas_2"] = _throughput(urls, warm, queries, requests, timeout)
    return {"rows": rows}


def render_scale(scale: dict[str, Any]) -> list[str]:
    """Markdown lines of the scale-out table."""
    labels = {f"workers_{w}": f"1 replica, {w} worker{'s' if w > 1 else ''}" for w in WORKER_COUNTS}
    labels["replicas_2"] = (
        "2 replicas x 1 worker, round-robin, one feedback DB, online state shared on Redis"
    )
    lines = [
        "Scale-out, `/route` at concurrency 16 (each setup started fresh, warmed up, then "
        "measured on the same queries):",
        "",
        "| setup | requests | errors | p50 ms | p99 ms | throughput req/s |",
        "|---|---|---|---|---|---|",
    ]
    for key, r in scale["rows"].items():
        p50 = "n/a" if r["p50_ms"] is None else f"{r['p50_ms']:.1f}"
        p99 = "n/a" if r["p99_ms"] is None else f"{r['p99_ms']:.1f}"
        lines.append(
            f"| {labels[key]} | {r['requests']} | {r['errors']} | {p50} | {p99} | "
            f"{r['throughput_rps']:.1f} |"
        )
    return [*lines, ""]
