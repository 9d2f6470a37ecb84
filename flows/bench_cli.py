"""`mixllm benchmark-service`: the routing service's latency, throughput and feedback durability.

Starts `mixllm serve` in a subprocess of its own (process group: stopped by its PID at the end,
even on error; ``bench_process``), drives it with `mixllm.tools.loadtest` on real RouterBench
queries, times the champion's bare encoder in process (``bench_measure``), and writes the
"## Service" section of the benchmarks markdown plus its numbers as JSON (``bench_report``).
mlflow and prefect are imported only inside the command.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.bench_measure import benchmark_queries, embedding_times, take
from flows.bench_process import (
    free_port,
    port_in_use,
    service_env,
    start_service,
    stop_service,
    wait_ready,
)
from flows.bench_report import (
    GOAL_P50_MS,
    GOAL_RATIO,
    GOAL_RPS,
    HIGH,
    LOW,
    capacity,
    goals_met,
    render_section,
    summary,
)
from flows.bench_scale import measure_scale

READY_TIMEOUT_S = 600.0
EMBED_SAMPLES = 200  # single-query encoder calls timed in process


@dataclass(frozen=True)
class QuerySets:
    """The disjoint query slices of one run (reused only when the pool is too small)."""

    pool: int
    need: int
    warm: list[str]
    low: list[str]
    high: list[str]
    durability: list[str]

    @classmethod
    def draw(cls, pool: list[str], warmup: int, requests: int, durability: int) -> QuerySets:
        """Slice ``pool``: warm-up, concurrency LOW, concurrency HIGH, durability."""
        need = warmup + 2 * requests + durability
        return cls(
            pool=len(pool),
            need=need,
            warm=take(pool, 0, warmup),
            low=take(pool, warmup, requests),
            high=take(pool, warmup + requests, requests),
            durability=take(pool, warmup + 2 * requests, durability),
        )


def _command(port: int | None, requests: int, out: Path, durability: int) -> str:
    if sys.argv[1:2] == ["benchmark-service"]:
        return "mixllm " + shlex.join(sys.argv[1:])
    parts = ["mixllm", "benchmark-service", "--requests", str(requests), "--out", str(out)]
    if port is not None:
        parts += ["--port", str(port)]
    if durability != 200:
        parts += ["--durability", str(durability)]
    return shlex.join(parts)


def _ready_or_exit(base: str, proc: subprocess.Popen, log: Path) -> dict[str, Any]:
    try:
        return wait_ready(base, proc, log, READY_TIMEOUT_S)
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _loadavg() -> float:
    return os.getloadavg()[0]


def _pick_port(port: int | None) -> int:
    """``port``, or a free one; exit 2 if ``port`` is taken."""
    if port is None:
        return free_port()
    if port_in_use(port):
        typer.echo(f"error: something already listens on 127.0.0.1:{port}; pick another --port")
        raise typer.Exit(2)
    return port


def _measure(
    base: str, q: QuerySets, requests: int, durability: int, timeout: float
) -> tuple[Any, Any, Any, Any]:
    """Warm up, then (/route at LOW, /route at HIGH, the HIGH queries again with their
    embeddings cached, feedback durability) against ``base``."""
    from mixllm.tools import loadtest

    if q.warm:
        first = max(1, len(q.warm) // 4)
        loadtest.route_load(base, q.warm[:first], LOW, first, timeout)
        if len(q.warm) > first:
            loadtest.route_load(base, q.warm[first:], HIGH, len(q.warm) - first, timeout)
    typer.echo(f"Measuring /route: {requests} requests at concurrency {LOW} ...")
    low = loadtest.route_load(base, q.low, LOW, requests, timeout)
    typer.echo(f"Measuring /route: {requests} requests at concurrency {HIGH} ...")
    high = loadtest.route_load(base, q.high, HIGH, requests, timeout)
    # The same queries again: their embeddings are now in the service's memory, so this
    # run measures serving (HTTP, tags, prediction, decision, log) without the encoder.
    typer.echo(f"Measuring /route: the same {requests} at concurrency {HIGH}, embeddings cached")
    cached = loadtest.route_load(base, q.high, HIGH, requests, timeout)
    typer.echo(f"Feedback durability: {durability} concurrent posts ...")
    dur = loadtest.feedback_durability(base, durability, durability, queries=q.durability)
    return low, high, cached, dur


def _serve_and_measure(
    port: int, data: str | None, q: QuerySets, requests: int, durability: int, timeout: float
) -> tuple[str, Any, Any, Any, Any]:
    """Start `mixllm serve`, measure it, stop it (always); (router version, low, high,
    high with embeddings cached, dur)."""
    base = f"http://127.0.0.1:{port}"
    tmp = Path(tempfile.mkdtemp(prefix="mixllm-bench-service-"))
    log = tmp / "serve.log"
    typer.echo(f"Starting `mixllm serve --port {port}` (log: {log}) ...")
    proc = start_service(port, service_env(tmp / "home"), log, data)
    try:
        health = _ready_or_exit(base, proc, log)
        version = str(health["router_version"])
        typer.echo(f"Service up: router v{version}. Warming up ...")
        return (version, *_measure(base, q, requests, durability, timeout))
    finally:
        stop_service(proc)
        shutil.rmtree(tmp / "home", ignore_errors=True)  # cache and feedback DB of this run only


def _machine(loadavg_start: float, loadavg_end: float) -> dict[str, Any]:
    niceness = os.nice(0)
    return {
        "cpus": os.cpu_count(),
        "loadavg_start": round(loadavg_start, 2),
        "loadavg_end": round(loadavg_end, 2),
        "niceness": niceness,
        "note": f", run at niceness {niceness}" if niceness else "",
    }


def benchmark_service(
    port: Annotated[
        int | None, typer.Option(help="Port on 127.0.0.1 for the service (default: a free one).")
    ] = None,
    requests: Annotated[
        int, typer.Option(min=1, help="Measured /route requests at each concurrency.")
    ] = 300,
    out: Annotated[
        Path, typer.Option(help="Markdown whose service section is (re)written.")
    ] = Path("docs/BENCHMARKS.md"),
    durability: Annotated[
        int, typer.Option(min=1, help="Concurrent feedback posts in the durability check.")
    ] = 200,
    data: Annotated[
        str | None, typer.Option(help="Queries (and first training, replay data) from here.")
    ] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Unmeasured requests first.")] = 32,
    scale: Annotated[
        bool, typer.Option(help="Also measure 1, 2, 4 workers and 2 replicas at concurrency 16.")
    ] = True,
    timeout: Annotated[float, typer.Option(help="Seconds one request may take.")] = 30.0,
) -> None:
    """Benchmark `mixllm serve`: /route latency and throughput at concurrency 1 and 16, the
    ratio to the bare embedding time, feedback durability; writes the service section of --out."""
    from flows.service_cli import ensure_champion, service_defaults
    from flows.training_cli import store_defaults
    from mixllm.tools.sections import upsert_section

    service_defaults()
    store_defaults()
    command = _command(port, requests, out, durability)
    port = _pick_port(port)
    loadavg_start = _loadavg()

    q = QuerySets.draw(benchmark_queries(data), warmup, requests, durability)
    typer.echo(f"{q.pool} distinct RouterBench queries ({q.need} needed without reuse).")
    ensure_champion(data, None)  # trains one with the usual stores and caches if none exists
    version, low, high, cached, dur = _serve_and_measure(
        port, data, q, requests, durability, timeout
    )
    loadavg_end = _loadavg()
    typer.echo("Service stopped. Timing the bare encoder in process ...")
    emb = embedding_times(version, q.low[:EMBED_SAMPLES], q.warm[:8] or q.low[:8])

    ratio = low.p50_ms / emb["p50_ms"] if emb["p50_ms"] and math.isfinite(low.p50_ms) else None
    goals = goals_met(low, high, dur.ok(durability), ratio)
    scaled = measure_scale(data, q.warm, q.high, requests, timeout) if scale else None
    json_path = out.with_name(out.stem + ".service.json")
    results: dict[str, Any] = {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "router_version": version,
        "workers": int(os.environ.get("MIXLLM_WORKERS", "1")),
        "machine": _machine(loadavg_start, loadavg_end),
        "queries": {"distinct": q.pool, "needed": q.need, "reused": q.need > q.pool},
        "warmup_requests": warmup,
        "route": {f"c{LOW}": low.to_dict(), f"c{HIGH}": high.to_dict()},
        "route_embeddings_cached": {f"c{HIGH}": cached.to_dict()},
        "embedding": emb,
        "capacity": capacity(
            emb, cached, os.cpu_count() or 1, int(os.environ.get("MIXLLM_WORKERS", "1"))
        ),
        "ratio_route_p50_to_embedding_p50": None if ratio is None else round(ratio, 3),
        "durability": {"n": durability, **dur._asdict()},
        "goals": goals,
        "goal_values": {"p50_c1_ms": GOAL_P50_MS, "ratio_c1": GOAL_RATIO, "rps_c16": GOAL_RPS},
        "scale": scaled,
        "json_name": json_path.name,
    }
    upsert_section(out, "service", render_section(results))
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    typer.echo(summary(results, str(out), str(json_path)))
    if low.errors or high.errors or cached.errors or not goals["durability"]:
        typer.echo("error: requests failed or feedback was lost; see the report", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `benchmark-service` to the `mixllm` app."""
    app.command("benchmark-service")(benchmark_service)
