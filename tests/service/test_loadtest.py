"""The load generator (mixllm.tools.loadtest) against a tiny real HTTP server started here: a
Starlette app under uvicorn with /route, /feedback and /healthz that keeps feedback rows and
can be told to be slow, fail, hang, answer garbage or lose rows."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mixllm.core.errors import ConfigError
from mixllm.tools.loadtest import Durability, feedback_durability, percentile, route_load
from mixllm.tools.sections import markers, replace_section, upsert_section

SERVICE_START, SERVICE_END = markers("service")

pytestmark = pytest.mark.service


@dataclass
class Behaviour:
    """What the fake service does; tests change it between runs."""

    delay_s: float = 0.0  # every /route waits this long (asyncio.sleep: no CPU)
    lose_every: int = 0  # answer 200 to every k-th feedback but store nothing
    reject_every: int = 0  # answer 503 to every k-th feedback
    hold_until: int = 0  # a feedback post waits (<= 0.5 s) until this many are in flight
    routed: dict[str, str] = field(default_factory=dict)  # request_id -> query
    rows: list[dict] = field(default_factory=list)
    route_calls: int = 0
    feedback_calls: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    feedback_in_flight: int = 0
    max_feedback_in_flight: int = 0


class FakeService:
    """uvicorn in a thread on a socket bound here (no port race)."""

    def __init__(self) -> None:
        self.state = Behaviour()
        routes = [
            Route("/route", self._route, methods=["POST"]),
            Route("/feedback", self._feedback, methods=["POST"]),
            Route("/healthz", self._healthz, methods=["GET"]),
        ]
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(
            Starlette(routes=routes),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    async def _route(self, request: Request) -> Response:
        s = self.state
        s.route_calls += 1
        s.in_flight += 1
        s.max_in_flight = max(s.max_in_flight, s.in_flight)
        try:
            query = (await request.json())["query"]
            if query.startswith("hang"):
                await asyncio.sleep(2)
            if s.delay_s:
                await asyncio.sleep(s.delay_s)
            if query.startswith("fail"):
                return JSONResponse({"error": {"message": "boom"}}, status_code=500)
            if query.startswith("text"):
                return PlainTextResponse("not json")
            rid = uuid.uuid4().hex
            s.routed[rid] = query
            out: dict = {"llm": "a", "request_id": rid}
            if query.startswith("d="):  # the server-reported decision time is in the query
                out["decision_ms"] = float(query[2:])
            return JSONResponse(out)
        finally:
            s.in_flight -= 1

    async def _feedback(self, request: Request) -> Response:
        s = self.state
        s.feedback_calls += 1
        k = s.feedback_calls
        s.feedback_in_flight += 1
        s.max_feedback_in_flight = max(s.max_feedback_in_flight, s.feedback_in_flight)
        try:
            body = await request.json()
            release = time.monotonic() + 0.5
            while s.feedback_in_flight < s.hold_until and time.monotonic() < release:
                await asyncio.sleep(0.005)  # a client that posts one by one never gets here
            await asyncio.sleep(0.01)
            if body.get("request_id") not in s.routed:
                return JSONResponse({"error": {"message": "unknown request_id"}}, status_code=404)
            if s.reject_every and k % s.reject_every == 0:
                return JSONResponse({"error": {"message": "store down"}}, status_code=503)
            if not (s.lose_every and k % s.lose_every == 0):
                s.rows.append(body)
            return JSONResponse({"stored": True})
        finally:
            s.feedback_in_flight -= 1

    async def _healthz(self, _: Request) -> Response:
        return JSONResponse({"status": "ok", "feedback_count": len(self.state.rows)})

    def __enter__(self) -> FakeService:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("fake service did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture
def fake() -> Iterator[FakeService]:
    with FakeService() as server:
        yield server


# -- pure helpers ------------------------------------------------------------------------


def test_percentile_nearest_rank() -> None:
    values = list(range(100, 0, -1))  # 1..100, unsorted on purpose
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    assert percentile([7.5], 99) == 7.5
    assert percentile([1, 2, 3, 4], 50) == 2  # an observed value, not the midpoint 2.5
    assert percentile([1, 2, 3, 4], 51) == 3
    assert percentile([], 50) != percentile([], 50)  # NaN
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_replace_section_replaces_or_appends(tmp_path) -> None:
    doc = f"# Benchmarks\n\nintro\n\n{SERVICE_START}\nold numbers\n{SERVICE_END}\n\n## Later\n"
    new = replace_section(doc, "service", "## Service\n\nnew numbers")
    assert "old numbers" not in new
    assert f"{SERVICE_START}\n## Service\n\nnew numbers\n{SERVICE_END}" in new
    assert new.startswith("# Benchmarks\n\nintro\n\n") and new.endswith("\n\n## Later\n")
    assert replace_section(new, "service", "## Service\n\nnew numbers") == new  # idempotent

    appended = replace_section("# Benchmarks\n\ntables\n", "service", "## Service\n\nx")
    assert (
        appended == f"# Benchmarks\n\ntables\n\n{SERVICE_START}\n## Service\n\nx\n{SERVICE_END}\n"
    )
    with pytest.raises(ConfigError, match="no <!-- service:end -->"):
        replace_section(f"{SERVICE_START}\ndangling", "service", "x")

    path = upsert_section(tmp_path / "sub" / "B.md", "service", "## Service\n\nfirst")
    upsert_section(path, "service", "## Service\n\nsecond")
    text = path.read_text()
    assert text.count(SERVICE_START) == 1 and "second" in text and "first" not in text


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:3000",
        "http://localhost:3000",
        "http://example.com",
        "http://127.0.0.2:3000",
        "http://[::1]:3000",
        "ftp://127.0.0.1:3000",
        "127.0.0.1:3000",
    ],
)
def test_refuses_anything_but_127_0_0_1(url: str) -> None:
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1|http://"):
        route_load(url, ["q"], concurrency=1, n_requests=1, timeout=1)
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1|http://"):
        feedback_durability(url, 1)


def test_bad_bounds_are_refused(fake: FakeService) -> None:
    for kwargs in ({"concurrency": 0}, {"n_requests": 0}, {"timeout": 0}):
        args = {"concurrency": 1, "n_requests": 1, "timeout": 1.0} | kwargs
        with pytest.raises(ConfigError):
            route_load(fake.url, ["q"], **args)
    with pytest.raises(ConfigError, match="no queries"):
        route_load(fake.url, [], concurrency=1, n_requests=1)
    assert fake.state.route_calls == 0


# -- /route load against the real server ---------------------------------------------------


def test_route_load_latency_and_decision_percentiles(fake: FakeService) -> None:
    queries = [f"d={i}" for i in range(1, 21)]  # the server reports decision_ms 1..20
    result = route_load(fake.url + "/", queries, concurrency=1, n_requests=20, timeout=5)
    assert (result.requests, result.ok, result.errors) == (20, 20, 0)
    assert fake.state.route_calls == 20 and fake.state.max_in_flight == 1
    assert result.decision_p50_ms == 10.0 and result.decision_p99_ms == 20.0
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms
    assert result.throughput_rps == pytest.approx(20 / result.wall_s)
    assert not result.stopped_early
    doc = result.to_dict()
    assert doc["ok"] == 20 and doc["error_kinds"] == {}


def test_route_load_concurrency_and_throughput(fake: FakeService) -> None:
    fake.state.delay_s = 0.05
    serial = route_load(fake.url, ["q"], concurrency=1, n_requests=12, timeout=5)
    fake.state.max_in_flight = 0
    parallel = route_load(fake.url, ["q"], concurrency=4, n_requests=12, timeout=5)
    assert fake.state.max_in_flight == 4  # exactly `concurrency` clients, no more
    assert serial.ok == parallel.ok == 12
    assert serial.p50_ms >= 50 and parallel.p50_ms >= 50
    assert serial.wall_s >= 12 * 0.05
    assert parallel.throughput_rps > 2 * serial.throughput_rps
    assert serial.decision_p50_ms is None  # these answers carry no decision_ms


def test_route_load_counts_each_kind_of_error(fake: FakeService) -> None:
    queries = ["ok-1", "fail-1", "ok-2", "text-1", "hang-1", "ok-3"]
    result = route_load(fake.url, queries, concurrency=3, n_requests=12, timeout=0.5)
    assert result.requests == 12 and result.ok == 6 and result.errors == 6
    assert result.error_kinds == {"HTTP 500": 2, "invalid JSON": 2, "timeout": 2}
    assert result.p99_ms < 500  # failures stay out of the latency percentiles

    dead = FakeService()  # bound but never started: connections are refused or hang
    dead.sock.close()
    refused = route_load(dead.url, ["q"], concurrency=2, n_requests=4, timeout=0.5)
    assert refused.ok == 0 and refused.errors == 4 and refused.throughput_rps == 0
    assert refused.p50_ms != refused.p50_ms  # NaN: no successful request
    assert refused.to_dict()["p50_ms"] is None


def test_route_load_stops_by_itself_at_max_seconds(fake: FakeService) -> None:
    fake.state.delay_s = 0.2
    t0 = time.monotonic()
    result = route_load(
        fake.url, ["q"], concurrency=2, n_requests=10_000, timeout=5, max_seconds=0.5
    )
    assert time.monotonic() - t0 < 2.0
    assert result.stopped_early and 2 <= result.requests <= 8
    assert result.ok == result.requests and result.errors == 0


# -- feedback durability -------------------------------------------------------------------


def test_durability_counts_exactly_n_new_rows(fake: FakeService) -> None:
    fake.state.rows.extend({"old": i} for i in range(3))  # rows from before the check
    fake.state.hold_until = 30
    result = feedback_durability(fake.url, 60)
    assert isinstance(result, Durability)
    posted, accepted, before, after = result
    assert (posted, accepted, before, after) == (60, 60, 3, 63)
    assert result.new_rows == 60 and result.ok(60)
    assert fake.state.route_calls == 60 and fake.state.feedback_calls == 60
    assert fake.state.max_feedback_in_flight >= 30  # posted concurrently, not one by one
    new = fake.state.rows[3:]
    assert len({r["request_id"] for r in new}) == 60  # one row per routed request
    assert sum("quality" in r for r in new) == 30 and sum("thumbs_up" in r for r in new) == 30


def test_durability_notices_lost_and_rejected_feedback(fake: FakeService) -> None:
    fake.state.lose_every, fake.state.hold_until = 10, 8  # 200 OK, but the row is gone
    lost = feedback_durability(fake.url, 40, concurrency=8)
    assert fake.state.max_feedback_in_flight == 8
    assert (lost.posted, lost.accepted, lost.new_rows) == (40, 40, 36)
    assert not lost.ok(40)

    fake.state.lose_every, fake.state.reject_every, fake.state.hold_until = 0, 5, 0
    rejected = feedback_durability(fake.url, 20)
    assert (rejected.posted, rejected.accepted, rejected.new_rows) == (20, 16, 16)
    assert not rejected.ok(20)


# -- the benchmark command's helpers (flows/bench_process.py, flows/bench_report.py) ------------


def test_stop_service_ends_the_whole_process_group(tmp_path) -> None:
    import os
    import subprocess

    from flows.bench_process import stop_service

    pid_file = tmp_path / "child.pid"
    proc = subprocess.Popen(  # a server-like parent with a child of its own, like bentoml
        ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], start_new_session=True
    )
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.02)
    child = int(pid_file.read_text())
    stop_service(proc, grace_s=5)
    assert proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nobody left in the group
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_render_section_reports_numbers_and_goals(fake: FakeService) -> None:
    from flows.bench_report import capacity, render_section

    low = route_load(fake.url, ["d=4"], concurrency=1, n_requests=5, timeout=5)
    fake.state.delay_s = 0.05
    high = route_load(fake.url, ["q"], concurrency=2, n_requests=4, timeout=5)
    durability = Durability(10, 10, 5, 15)
    results = {
        "command": "mixllm benchmark-service --requests 5 --out /tmp/x.md",
        "date": "2025-01-01 00:00 UTC",
        "router_version": "3",
        "workers": 1,
        "machine": {"cpus": 2, "loadavg_start": 1.5, "loadavg_end": 2.25, "note": ""},
        "queries": {"distinct": 100, "needed": 20, "reused": False},
        "warmup_requests": 2,
        "route": {"c1": low.to_dict(), "c16": high.to_dict()},
        "embedding": {
            "encoder": "SentenceEncoder",
            "max_seq_length": 64,
            "samples": 5,
            "p50_ms": 4.0,
            "p99_ms": 6.0,
            "cache_dir_configured": None,
        },
        "route_embeddings_cached": {"c16": low.to_dict()},
        "capacity": capacity({"served_backend_cpu_ms": 8.0, "served_encoder_threads": 1}, low, 2),
        "ratio_route_p50_to_embedding_p50": 2.5,
        "durability": {"n": 10, **durability._asdict()},
        "goals": {"p50_c1": True, "rps_c16": False, "durability": durability.ok(10)},
        "json_name": "x.service.json",
        "scale": {
            "rows": {"workers_1": high.to_dict(), "replicas_2": high.to_dict()},
        },
    }
    text = render_section(results)
    assert text.startswith("## Service\n")
    assert "mixllm benchmark-service --requests 5 --out /tmp/x.md" in text
    assert "| 1 | 5 | 0 |" in text and "| 4.0 |" in text  # decision p50 from the server
    assert f"| 2 | 4 | 0 | {high.p50_ms:.1f} |" in text
    assert "| `/route` p50 <= 15 ms at concurrency 1 |" in text and "| yes |" in text
    assert "| `/route` p50 <= 1.3 x bare embedding p50 at concurrency 1 | 2.50 x | **no** |" in text
    assert f"| {high.throughput_rps:.1f} req/s | **no** |" in text
    assert "5 -> 15 (+10)" in text and "**2.50**" in text
    assert f"| 1 replica, 1 worker | 4 | 0 | {high.p50_ms:.1f} |" in text
    assert "online state shared on Redis" in text
    # what bounds throughput: one worker's 1-thread encoder (1 x 1000 / 8 ms = 125 req/s on
    # 2 CPUs) and serving alone
    assert f"| 16, same queries again (embeddings cached) | 5 | 0 | {low.p50_ms:.1f} |" in text
    assert "uses 8.0 ms of CPU per single query" in text and "runs on 1 of the 2 CPUs" in text
    assert "at about 125 req/s" in text
    assert f"reaches {low.throughput_rps:.1f} req/s" in text


def test_route_load_round_robins_over_replicas(fake: FakeService) -> None:
    with FakeService() as second:
        result = route_load([fake.url, second.url], ["q"], concurrency=2, n_requests=10)
    assert result.ok == 10
    assert fake.state.route_calls == second.state.route_calls == 5
