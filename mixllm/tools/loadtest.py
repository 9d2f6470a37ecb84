"""Load generator for the routing service: `/route` latency and throughput, feedback durability.

asyncio + httpx against a service on 127.0.0.1 only (any other host is refused). Every run is
bounded in number of requests and in time: it stops by itself after ``n_requests`` or
``max_seconds``, whichever comes first, and no request waits longer than ``timeout``.
Nothing here imports bentoml or prefect; ``flows/bench_cli.py`` drives it against
``mixllm serve``.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple, ParamSpec, TypeVar

import httpx

from mixllm.core.errors import ConfigError, MixLLMError

LOOPBACK = "127.0.0.1"
ROUTE_CONCURRENCY = 16  # the durability check routes its queries at most this many at a time

P = ParamSpec("P")
R = TypeVar("R")


# -- small pure helpers ------------------------------------------------------------------


def check_base_url(url: str) -> str:
    """``url`` minus its trailing slash if it is http(s)://127.0.0.1[:port]; else ConfigError."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigError(f"invalid service URL {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise ConfigError(f"service URL {url!r} must start with http:// (got {parsed.scheme!r})")
    if parsed.host != LOOPBACK:
        raise ConfigError(
            f"refusing to load-test host {parsed.host!r}: the load generator only targets "
            f"{LOOPBACK} (use http://{LOOPBACK}:PORT)"
        )
    return str(parsed).rstrip("/")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile by nearest rank (always an observed value); NaN if empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside [0, 100]")
    if len(values) == 0:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def blocking(coroutine_fn: Callable[P, Coroutine[Any, Any, R]], doc: str) -> Callable[P, R]:
    """A blocking twin of ``coroutine_fn`` with its signature: one event loop per call.

    The sync entry points are the async ones run to completion; wrapping them here keeps one
    parameter list per measurement instead of two that must be kept in step."""

    @functools.wraps(coroutine_fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return asyncio.run(coroutine_fn(*args, **kwargs))

    run.__name__ = run.__qualname__ = coroutine_fn.__name__.removeprefix("a")
    run.__doc__ = doc
    return run


# -- /route load -------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """Latency (ms, successful requests only), throughput and errors of one load run."""

    concurrency: int
    requests: int  # sent
    ok: int
    errors: int
    wall_s: float
    throughput_rps: float  # successful requests per second of wall time
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    decision_p50_ms: float | None  # server-reported `decision_ms`, when the answers carry it
    decision_p99_ms: float | None
    error_kinds: dict[str, int] = field(default_factory=dict)
    stopped_early: bool = False  # max_seconds ran out before n_requests were sent

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; NaN becomes None."""
        return {k: _json_number(v) for k, v in asdict(self).items()}


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, float):
        return round(value, 3)
    return value


def _client(concurrency: int, timeout: float) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # trust_env=False: a proxy from the environment must never see loopback traffic.
    return httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False)


def _check_bounds(concurrency: int, n_requests: int, timeout: float, max_seconds: float) -> None:
    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    if n_requests < 1:
        raise ConfigError(f"n_requests must be >= 1, got {n_requests}")
    if not timeout > 0 or not max_seconds > 0:
        raise ConfigError(f"timeout and max_seconds must be > 0, got {timeout} and {max_seconds}")


async def _post(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], timeout: float
) -> tuple[dict[str, Any] | None, str | None]:
    """(JSON answer, None) on a 2xx JSON object; (None, error kind) otherwise."""
    try:
        resp = await asyncio.wait_for(client.post(url, json=body), timeout)
    except (TimeoutError, httpx.TimeoutException):
        return None, "timeout"
    except httpx.HTTPError as exc:
        return None, type(exc).__name__
    if not 200 <= resp.status_code < 300:
        return None, f"HTTP {resp.status_code}"
    try:
        payload = resp.json()
    except ValueError:
        return None, "invalid JSON"
    if not isinstance(payload, dict):
        return None, "invalid JSON"
    return payload, None


async def aroute_load(
    url: str | Sequence[str],
    queries: Sequence[str],
    concurrency: int,
    n_requests: int,
    timeout: float = 30.0,
    *,
    budget: float | None = None,
    max_seconds: float = 300.0,
) -> LoadResult:
    """Async ``route_load``: ``concurrency`` clients share ``n_requests`` POST /route calls.

    Several ``url``s (replicas) take the requests round-robin: request i goes to url i mod n."""
    bases = [check_base_url(u) for u in ([url] if isinstance(url, str) else url)]
    if not bases:
        raise ConfigError("no service URL to send to")
    _check_bounds(concurrency, n_requests, timeout, max_seconds)
    if not queries:
        raise ConfigError("no queries to send")
    latencies: list[float] = []
    decisions: list[float] = []
    errors: Counter[str] = Counter()
    sent = 0
    start = time.perf_counter()
    deadline = start + max_seconds
    last_done = start

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent, last_done
        while sent < n_requests and time.perf_counter() < deadline:
            i = sent
            sent += 1
            body: dict[str, Any] = {"query": queries[i % len(queries)]}
            if budget is not None:
                body["budget"] = budget
            t0 = time.perf_counter()
            base = bases[i % len(bases)]
            payload, error = await _post(client, f"{base}/route", body, timeout)
            t1 = time.perf_counter()
            last_done = max(last_done, t1)
            if error is not None:
                errors[error] += 1
                continue
            latencies.append((t1 - t0) * 1000)
            decision_ms = payload.get("decision_ms")
            if isinstance(decision_ms, int | float) and not isinstance(decision_ms, bool):
                decisions.append(float(decision_ms))

    async with _client(concurrency, timeout) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    wall = max(last_done - start, 1e-9)
    return LoadResult(
        concurrency=concurrency,
        requests=sent,
        ok=len(latencies),
        errors=sum(errors.values()),
        wall_s=wall,
        throughput_rps=len(latencies) / wall,
        p50_ms=percentile(latencies, 50),
        p90_ms=percentile(latencies, 90),
        p99_ms=percentile(latencies, 99),
        mean_ms=sum(latencies) / len(latencies) if latencies else math.nan,
        max_ms=max(latencies) if latencies else math.nan,
        decision_p50_ms=percentile(decisions, 50) if decisions else None,
        decision_p99_ms=percentile(decisions, 99) if decisions else None,
        error_kinds=dict(errors),
        stopped_early=sent < n_requests,
    )


route_load = blocking(
    aroute_load,
    "Send ``n_requests`` POST /route (queries cycled) with ``concurrency`` clients to one URL "
    "or round-robin to several; measure.",
)


# -- feedback durability -----------------------------------------------------------------


class Durability(NamedTuple):
    """Feedback posted, accepted (2xx) and the store's row count before and after."""

    posted: int
    accepted: int
    rows_before: int
    rows_after: int

    @property
    def new_rows(self) -> int:
        """Rows the store gained during the check."""
        return self.rows_after - self.rows_before

    def ok(self, n: int) -> bool:
        """All ``n`` posts sent and accepted, and exactly ``n`` new rows."""
        return self.posted == self.accepted == self.new_rows == n


def probe_queries(n: int) -> list[str]:
    """``n`` distinct synthetic queries for the durability check."""
    return [f"Durability probe {i}: what is {i} plus {i + 1}?" for i in range(n)]


async def feedback_count(client: httpx.AsyncClient, base: str, timeout: float) -> int:
    """``feedback_count`` from GET /healthz (MixLLMError if the service cannot say)."""
    try:
        resp = await asyncio.wait_for(client.get(f"{base}/healthz"), timeout)
    except (TimeoutError, httpx.HTTPError) as exc:
        raise MixLLMError(f"GET {base}/healthz failed: {type(exc).__name__}: {exc}") from exc
    try:
        count = resp.json().get("feedback_count")
    except (ValueError, AttributeError):
        count = None
    if resp.status_code != 200 or not isinstance(count, int) or isinstance(count, bool):
        raise MixLLMError(
            f"GET {base}/healthz gave no feedback_count (HTTP {resp.status_code}): "
            f"{resp.text[:200]}"
        )
    return count


async def afeedback_durability(
    url: str,
    n: int,
    concurrency: int | None = None,
    *,
    queries: Sequence[str] | None = None,
    timeout: float = 60.0,
    max_seconds: float = 300.0,
) -> Durability:
    """Async ``feedback_durability``."""
    base = check_base_url(url)
    concurrency = n if concurrency is None else concurrency
    _check_bounds(concurrency, n, timeout, max_seconds)
    texts = list(queries) if queries else probe_queries(n)
    deadline = time.perf_counter() + max_seconds
    post_gate = asyncio.Semaphore(concurrency)
    route_gate = asyncio.Semaphore(min(concurrency, ROUTE_CONCURRENCY))

    async def bounded(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict | None:
        async with route_gate if path == "/route" else post_gate:
            if time.perf_counter() >= deadline:
                return None
            payload, _ = await _post(client, f"{base}{path}", body, timeout)
            return payload

    async with _client(concurrency, timeout) as client:
        before = await feedback_count(client, base, timeout)
        routed = await asyncio.gather(
            *(bounded(client, "/route", {"query": texts[i % len(texts)]}) for i in range(n))
        )
        ids = [r["request_id"] for r in routed if r is not None and r.get("request_id")]
        # Both kinds of feedback: quality scores and thumbs, all in flight at once.
        bodies = [
            {"request_id": rid, "quality": (i % 5) / 4}
            if i % 2 == 0
            else {"request_id": rid, "thumbs_up": i % 3 != 0}
            for i, rid in enumerate(ids)
        ]
        answers = await asyncio.gather(*(bounded(client, "/feedback", b) for b in bodies))
        after = await feedback_count(client, base, timeout)
    accepted = sum(1 for a in answers if a is not None)
    return Durability(len(bodies), accepted, before, after)


feedback_durability = blocking(
    afeedback_durability,
    """Route ``n`` queries, post ``n`` feedback items at once, count the store's rows around it.

    ``concurrency`` bounds the feedback posts in flight (default: all ``n``); the routing
    before them uses at most 16 at a time. ``feedback_count`` comes from GET /healthz. Returns
    (posted, accepted, rows_before, rows_after); durable is ``Durability.ok(n)``: all ``n``
    posted and accepted and exactly ``n`` new rows.
    """,
)
