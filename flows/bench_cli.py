"""`mixllm benchmark-service`: the routing service's latency, throughput and feedback durability.

Starts `mixllm serve` in a subprocess of its own (process group: stopped by its PID at the end,
even on error), drives it with `mixllm.tools.loadtest` on real RouterBench queries, times the
champion's bare encoder in process, and writes the "## Service" section of the benchmarks
markdown plus its numbers as JSON. mlflow and prefect are imported only inside the command.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from mixllm.core.paths import project_dir as project_root

GOAL_P50_MS = 20.0  # /route p50 at concurrency 1
GOAL_RPS = 100.0  # /route throughput at concurrency 16
LOW, HIGH = 1, 16  # the two concurrencies measured
READY_TIMEOUT_S = 600.0
EMBED_SAMPLES = 200  # single-query encoder calls timed in process


# -- the service subprocess ----------------------------------------------------------------


def _mixllm() -> list[str]:
    """The `mixllm` console script next to this Python (the project's venv)."""
    script = Path(sys.executable).with_name("mixllm")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from flows.cli import app; app()"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True if something already accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def service_env(home: Path) -> dict[str, str]:
    """The served process's environment: a fresh MIXLLM_HOME (cold embedding cache, own
    feedback database) and no retraining trigger, so the run leaves the real stores alone."""
    env = dict(os.environ)
    env.update(
        MIXLLM_HOME=str(home),
        MIXLLM_FEEDBACK_URL=f"sqlite:///{home / 'feedback.db'}",
        MIXLLM_RETRAIN_THRESHOLD="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_service(port: int, env: dict[str, str], log: Path, data: str | None) -> subprocess.Popen:
    """`mixllm serve --port PORT` in its own process group, output to ``log``."""
    cmd = [*_mixllm(), "serve", "--port", str(port)]
    if data:
        cmd += ["--data", data]
    with open(log, "wb") as fh:
        return subprocess.Popen(
            cmd,
            cwd=project_root(),
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _tail(log: Path, n: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


def wait_ready(base: str, proc: subprocess.Popen, log: Path, timeout_s: float) -> dict[str, Any]:
    """Poll GET /healthz until it names a router version; RuntimeError if the server dies."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"`mixllm serve` exited ({proc.returncode}):\n{_tail(log)}")
        try:
            resp = httpx.get(f"{base}/healthz", timeout=5, trust_env=False)
            body = resp.json() if resp.status_code == 200 else {}
            if body.get("router_version"):
                return body
            last = f"HTTP {resp.status_code}: {resp.text[:200]}"
        except (httpx.HTTPError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(1)
    raise RuntimeError(f"{base}/healthz not ready after {timeout_s:.0f} s ({last}):\n{_tail(log)}")


def stop_service(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """Stop the server's process group (its id is the PID we started); SIGKILL after ``grace_s``."""
    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        proc.wait()
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        proc.poll()
        try:
            os.killpg(pgid, 0)  # anyone left in the group (bentoml and its workers)?
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    proc.wait(timeout=30)


# -- queries and the bare encoder ----------------------------------------------------------


def benchmark_queries(data: str | None, seed: int = 0) -> list[str]:
    """Distinct RouterBench queries (the `query` column), shuffled with ``seed``."""
    from mixllm.core.paths import default_data_path
    from mixllm.data.loaders import load_data

    routing = load_data(data or default_data_path())
    limit = int(os.environ.get("MIXLLM_MAX_QUERY_CHARS", "20000"))
    texts = [str(q).strip() for q in routing.queries["query"]]
    texts = list(dict.fromkeys(t for t in texts if t and len(t) <= limit))
    random.Random(seed).shuffle(texts)
    return texts


def take(pool: list[str], start: int, n: int) -> list[str]:
    """``n`` queries from ``pool`` starting at ``start``, wrapping around if the pool is short."""
    return [pool[(start + i) % len(pool)] for i in range(n)]


def _bare_encode(encoder: Any) -> Callable[[str], Any]:
    """One query through the encoder's model, never through its embedding cache."""
    compute = getattr(encoder, "_compute", None)  # SentenceEncoder: the model without the cache
    if compute is not None:
        return lambda q: compute([q], False)
    return lambda q: encoder.encode([q])


def embedding_times(version: str, queries: list[str], warmup: list[str]) -> dict[str, Any]:
    """Load champion ``version``'s router in process and time single uncached queries (ms)."""
    from mixllm.registry import stores as registry

    router, _ = registry.load_version(registry.MODEL_NAME, version)
    encoder = router.encoder_
    encode = _bare_encode(encoder)
    for q in warmup:  # loads the model, first-call allocations
        encode(q)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        encode(q)
        times.append((time.perf_counter() - t0) * 1000)
    from mixllm.tools.loadtest import percentile

    return {
        "encoder": type(encoder).__name__,
        "max_seq_length": getattr(encoder, "max_seq_length", None),
        "samples": len(times),
        "p50_ms": round(percentile(times, 50), 3),
        "p99_ms": round(percentile(times, 99), 3),
        "cache_dir_configured": router.cfg.encoder.cache_dir,
    }


# -- the report ------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.1f}"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def render_section(r: dict[str, Any]) -> str:
    """The "## Service" markdown of one run's results ``r``."""
    low, high = r["route"][f"c{LOW}"], r["route"][f"c{HIGH}"]
    emb, dur, goals, m = r["embedding"], r["durability"], r["goals"], r["machine"]
    new_rows = dur["rows_after"] - dur["rows_before"]
    workers = f"{r['workers']} worker" + ("s" if r["workers"] != 1 else "")
    rows = [
        f"| {x['concurrency']} | {x['requests']} | {x['errors']} | {_ms(x['p50_ms'])} | "
        f"{_ms(x['p90_ms'])} | {_ms(x['p99_ms'])} | {x['throughput_rps']:.1f} | "
        f"{_ms(x['decision_p50_ms'])} |"
        for x in (low, high)
    ]
    goal_rows = [
        f"| `/route` p50 <= {GOAL_P50_MS:g} ms at concurrency {LOW} | "
        f"{_ms(low['p50_ms'])} ms | {_yes(goals['p50_c1'])} |",
        f"| >= {GOAL_RPS:g} requests/s at concurrency {HIGH} | "
        f"{high['throughput_rps']:.1f} req/s | {_yes(goals['rps_c16'])} |",
        f"| {dur['n']} concurrent feedback posts -> exactly {dur['n']} new rows | "
        f"+{new_rows} rows, {dur['accepted']} accepted | {_yes(goals['durability'])} |",
    ]
    if emb["cache_dir_configured"]:
        cache = f"the router's configured `{emb['cache_dir_configured']}` (may hold embeddings)"
    else:
        cache = (
            "cold (a fresh `MIXLLM_HOME`), and each measured query is a distinct RouterBench "
            "query sent once, so every request computes its embedding"
        )
    if r["queries"]["reused"]:
        cache += f" (only {r['queries']['distinct']} distinct queries: some were sent twice)"
    ratio = r["ratio_route_p50_to_embedding_p50"]
    lines = [
        "## Service",
        "",
        f"`POST /route` of `mixllm serve` (BentoML, {workers}, router "
        f"v{r['router_version']} @champion), embedding included, on real RouterBench queries; "
        "feedback durability under load. Measured by",
        "",
        "```bash",
        r["command"],
        "```",
        "",
        f"on {r['date']}: {m['cpus']} CPUs, load average {m['loadavg_start']:.2f} before the "
        f"service started and {m['loadavg_end']:.2f} at the end{m['note']}. Embedding cache of "
        f"the served router: {cache}. {r['warmup_requests']} warm-up requests first, not "
        'counted. Latency is measured at the client (HTTP included); "decision" is the '
        "`decision_ms` the service reports.",
        "",
        "| concurrency | requests | errors | p50 ms | p90 ms | p99 ms | throughput req/s "
        "| decision p50 ms |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Bare single-query embedding with the champion's encoder (`{emb['encoder']}`, max "
        f"{emb['max_seq_length']} tokens) in process after the service stopped, same run, "
        f"{emb['samples']} uncached queries: p50 {_ms(emb['p50_ms'])} ms, p99 "
        f"{_ms(emb['p99_ms'])} ms. Ratio of `/route` p50 at concurrency {LOW} to the embedding "
        f"p50: **{'n/a' if ratio is None else f'{ratio:.2f}'}**.",
        "",
        f"Feedback durability: {dur['n']} queries routed, then {dur['posted']} feedback posts "
        f"all in flight at once -> {dur['accepted']} accepted (2xx), `feedback_count` "
        f"{dur['rows_before']} -> {dur['rows_after']} (+{new_rows}).",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        *goal_rows,
        "",
        f"Raw numbers: [{r['json_name']}]({r['json_name']}).",
    ]
    return "\n".join(lines) + "\n"


# -- the command -----------------------------------------------------------------------------


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
    timeout: Annotated[float, typer.Option(help="Seconds one request may take.")] = 30.0,
) -> None:
    """Benchmark `mixllm serve`: /route latency and throughput at concurrency 1 and 16, the
    ratio to the bare embedding time, feedback durability; writes the service section of --out."""
    from flows.service_cli import ensure_champion, service_defaults
    from flows.training_cli import store_defaults
    from mixllm.tools import loadtest

    service_defaults()
    store_defaults()
    command = _command(port, requests, out, durability)
    if port is None:
        port = free_port()
    elif port_in_use(port):
        typer.echo(f"error: something already listens on 127.0.0.1:{port}; pick another --port")
        raise typer.Exit(2)
    base = f"http://127.0.0.1:{port}"
    loadavg_start = _loadavg()

    pool = benchmark_queries(data)
    need = warmup + 2 * requests + durability
    typer.echo(f"{len(pool)} distinct RouterBench queries ({need} needed without reuse).")
    q_warm = take(pool, 0, warmup)
    q_low = take(pool, warmup, requests)
    q_high = take(pool, warmup + requests, requests)
    q_dur = take(pool, warmup + 2 * requests, durability)

    ensure_champion(data, None)  # trains one with the usual stores and caches if none exists
    tmp = Path(tempfile.mkdtemp(prefix="mixllm-bench-service-"))
    log = tmp / "serve.log"
    typer.echo(f"Starting `mixllm serve --port {port}` (log: {log}) ...")
    proc = start_service(port, service_env(tmp / "home"), log, data)
    try:
        health = _ready_or_exit(base, proc, log)
        version = str(health["router_version"])
        typer.echo(f"Service up: router v{version}. Warming up ...")
        if warmup:
            first = max(1, warmup // 4)
            loadtest.route_load(base, q_warm[:first], LOW, first, timeout)
            if warmup > first:
                loadtest.route_load(base, q_warm[first:], HIGH, warmup - first, timeout)
        typer.echo(f"Measuring /route: {requests} requests at concurrency {LOW} ...")
        low = loadtest.route_load(base, q_low, LOW, requests, timeout)
        typer.echo(f"Measuring /route: {requests} requests at concurrency {HIGH} ...")
        high = loadtest.route_load(base, q_high, HIGH, requests, timeout)
        typer.echo(f"Feedback durability: {durability} concurrent posts ...")
        dur = loadtest.feedback_durability(base, durability, durability, queries=q_dur)
    finally:
        stop_service(proc)
        shutil.rmtree(tmp / "home", ignore_errors=True)  # cache and feedback DB of this run only
    loadavg_end = _loadavg()
    typer.echo("Service stopped. Timing the bare encoder in process ...")
    emb = embedding_times(version, q_low[:EMBED_SAMPLES], q_warm[:8] or q_low[:8])

    ratio = low.p50_ms / emb["p50_ms"] if emb["p50_ms"] and math.isfinite(low.p50_ms) else None
    goals = {
        "p50_c1": bool(low.errors == 0 and low.p50_ms <= GOAL_P50_MS),
        "rps_c16": bool(high.errors == 0 and high.throughput_rps >= GOAL_RPS),
        "durability": dur.ok(durability),
    }
    niceness = os.nice(0)
    json_path = out.with_name(out.stem + ".service.json")
    results: dict[str, Any] = {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "router_version": version,
        "workers": int(os.environ.get("MIXLLM_WORKERS", "1")),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_start": round(loadavg_start, 2),
            "loadavg_end": round(loadavg_end, 2),
            "niceness": niceness,
            "note": f", run at niceness {niceness}" if niceness else "",
        },
        "queries": {"distinct": len(pool), "needed": need, "reused": need > len(pool)},
        "warmup_requests": warmup,
        "route": {f"c{LOW}": low.to_dict(), f"c{HIGH}": high.to_dict()},
        "embedding": emb,
        "ratio_route_p50_to_embedding_p50": None if ratio is None else round(ratio, 3),
        "durability": {"n": durability, **dur._asdict()},
        "goals": goals,
        "goal_values": {"p50_c1_ms": GOAL_P50_MS, "rps_c16": GOAL_RPS},
        "json_name": json_path.name,
    }
    loadtest.write_section(out, render_section(results))
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    typer.echo(
        f"/route c={LOW}: p50 {_ms(low.p50_ms)} ms, p99 {_ms(low.p99_ms)} ms, "
        f"{low.throughput_rps:.1f} req/s, {low.errors} errors\n"
        f"/route c={HIGH}: p50 {_ms(high.p50_ms)} ms, p99 {_ms(high.p99_ms)} ms, "
        f"{high.throughput_rps:.1f} req/s, {high.errors} errors\n"
        f"bare embedding p50 {_ms(emb['p50_ms'])} ms; route p50 / embedding p50 = "
        f"{results['ratio_route_p50_to_embedding_p50']}\n"
        f"durability: posted {dur.posted}, accepted {dur.accepted}, rows {dur.rows_before} -> "
        f"{dur.rows_after}\n"
        f"goals: p50<={GOAL_P50_MS:g}ms@c1 {goals['p50_c1']}, >={GOAL_RPS:g}rps@c16 "
        f"{goals['rps_c16']}, durability {goals['durability']}\n"
        f"Wrote {out} (service section) and {json_path}."
    )
    if low.errors or high.errors or not goals["durability"]:
        typer.echo("error: requests failed or feedback was lost; see the report", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `benchmark-service` to the `mixllm` app."""
    app.command("benchmark-service")(benchmark_service)
