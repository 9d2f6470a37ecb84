"""Issue #10, one routing state across real `mixllm serve` processes: two workers on the
embedded default store (a removal is never, an addition always seen; both survive a
restart), and two replicas on two ports sharing Redis (state), PostgreSQL (feedback) and
one MLflow store (changes and feedback on one reach the other; a replica killed with
SIGKILL loses no acknowledged feedback)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import VENV_BIN, free_port, stop, wait_healthy
from tests.tiny_data import SPECIALISTS, query

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.timeout(900)]

REDIS_URL = os.environ.get("MIXLLM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NEW = {"name": "acme/newcomer", "input_price": 1e-9, "output_price": 1e-9, "backend": "up"}


@pytest.fixture(scope="module")
def base_env(svc_root: Path, mlflow_uri: str, tiny_csv: Path, router_dir: Path, upstream) -> dict:
    """Environment of every `mixllm serve` here: champion v1 in one MLflow store; backends
    replay and ``up`` (a real OpenAI-compatible upstream that answers NEW)."""
    from tests.service._registry import register_router

    register_router(router_dir)
    backends = svc_root / "shared-serving" / "backends.yaml"
    backends.parent.mkdir(exist_ok=True)
    backends.write_text(
        "default_backend: replay\nbackends:\n  - {name: replay, kind: replay}\n"
        f"  - {{name: up, kind: openai, base_url: '{upstream.url('ok')}'}}\n"
    )
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "MIXLLM_DATA": str(tiny_csv),
        "MIXLLM_CHAMPION_POLL_S": "0",
        "MIXLLM_RETRAIN_THRESHOLD": "0",
        "MIXLLM_BACKENDS": str(backends),
    }
    for key in ("PROMETHEUS_MULTIPROC_DIR", "MIXLLM_STATE_URL"):
        env.pop(key, None)
    return env


@contextlib.contextmanager
def serving(env: dict, log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`mixllm serve` on a free port until the block ends: (base URL, process)."""
    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "mixllm"), "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{base}/readyz", proc, 300, log)
        yield base, proc
    finally:
        stop(proc)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                kids = [int(c) for c in task.read_text().split()]
                found += kids
                todo += kids
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it, by process group (`mixllm serve` runs
    `bentoml serve` in a session of its own)."""
    groups = set()
    for p in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(p))
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def route(base: str, q: str, **body) -> dict:
    """One POST /route on a fresh connection (so that requests spread over the workers)."""
    resp = httpx.post(f"{base}/route", json={"query": q, **body}, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def listed(base: str, what: str = "active") -> dict[str, object]:
    """GET /llms: LLM -> its ``what`` (active, backend, ...)."""
    resp = httpx.get(f"{base}/llms", timeout=30)
    assert resp.status_code == 200, resp.text
    return {m["name"]: m.get(what) for m in resp.json()["llms"]}


def test_two_workers_share_changes_and_a_restart_keeps_them(svc_root: Path, base_env) -> None:
    home = svc_root / "shared-workers"
    env = {
        **base_env,
        "MIXLLM_WORKERS": "2",
        "MIXLLM_HOME": str(home / "home"),  # the default store: $MIXLLM_HOME/service/state.db
        "MIXLLM_FEEDBACK_URL": f"sqlite:///{home / 'feedback.db'}",
    }
    removed = SPECIALISTS["mbpp"]  # every coding query goes to it while it is a candidate
    coding = [query("mbpp", i) for i in range(1, 51)]
    with serving(env, home / "serve-1.log") as (base, _):
        assert route(base, coding[0])["llm"] == removed
        assert httpx.delete(f"{base}/llms/{removed}", timeout=30).status_code == 200
        picks = [route(base, q)["llm"] for q in coding]
        assert picks.count(removed) == 0, picks
        assert httpx.post(f"{base}/llms", json=NEW, timeout=30).status_code == 200
        seen = [listed(base).get(NEW["name"]) for _ in range(20)]
        assert seen == [True] * 20, seen
    with serving(env, home / "serve-2.log") as (base, _):  # a restart on the same store
        llms = listed(base)
        assert llms[removed] is False and llms[NEW["name"]] is True, llms
        assert removed not in {route(base, q)["llm"] for q in coding[:10]}


@pytest.fixture(scope="module")
def replicas(svc_root: Path, base_env: dict, pg_url: str) -> Iterator[list]:
    """Two `mixllm serve` replicas (one worker each) sharing Redis, PostgreSQL, MLflow."""
    import redis

    namespace = f"mixllm-test-{secrets.token_hex(4)}"
    env = {
        **base_env,
        "MIXLLM_STATE_URL": REDIS_URL,
        "MIXLLM_STATE_NAMESPACE": namespace,
        "MIXLLM_FEEDBACK_URL": pg_url,
    }
    root = svc_root / "replicas"
    with contextlib.ExitStack() as stack:
        up = [stack.enter_context(serving(env, root / f"replica-{i}.log")) for i in (1, 2)]
        yield up
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{namespace}:*"):
        client.delete(key)


def test_replicas_see_each_others_candidate_changes(replicas) -> None:
    (a, _), (b, _) = replicas
    removed = SPECIALISTS["winogrande"]
    winogrande = [query("winogrande", i) for i in range(1, 21)]
    assert route(b, winogrande[0])["llm"] == removed
    assert httpx.delete(f"{a}/llms/{removed}", timeout=30).status_code == 200
    assert removed not in {route(b, q)["llm"] for q in winogrande}
    assert httpx.post(f"{b}/llms", json=NEW, timeout=30).status_code == 200
    assert listed(a).get(NEW["name"]) is True
    assert listed(a, "backend").get(NEW["name"]) == "up"  # its route came along
    assert route(a, winogrande[0], candidates=[NEW["name"]])["llm"] == NEW["name"]
    assert httpx.delete(f"{b}/llms/{NEW['name']}", timeout=30).status_code == 200
    assert listed(a).get(NEW["name"]) is False
    back = {"name": removed, "input_price": 1e-9, "output_price": 1e-9}  # a trained LLM
    assert httpx.post(f"{a}/llms", json=back, timeout=30).status_code == 200
    assert route(b, winogrande[0])["llm"] == removed


def test_feedback_on_one_replica_changes_the_others_decision(replicas) -> None:
    (a, _), (b, _) = replicas
    q = query("mbpp", 3)
    chosen = route(b, q)["llm"]
    assert chosen == SPECIALISTS["mbpp"]
    for _ in range(30):  # the chosen LLM keeps failing this query, as reported to A
        rid = route(a, q, candidates=[chosen])["request_id"]
        body = {"request_id": rid, "quality": 0.0}
        assert httpx.post(f"{a}/feedback", json=body, timeout=30).status_code == 200
    assert route(b, q)["llm"] != chosen


def test_a_replica_killed_mid_load_loses_no_acknowledged_feedback(replicas, pg_url) -> None:
    import sqlalchemy

    (a, proc), (b, _) = replicas
    acked: list[str] = []
    stop_load = threading.Event()

    def load(worker: int) -> None:
        i = 0
        while not stop_load.is_set():
            i += 1
            try:
                rid = route(a, query("arc-challenge", 1 + (worker * 7 + i) % 30))["request_id"]
                resp = httpx.post(f"{a}/feedback", json={"request_id": rid, "quality": 1.0})
            except (httpx.HTTPError, AssertionError):
                continue  # the replica is gone: nothing was acknowledged
            if resp.status_code == 200:
                acked.append(rid)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    kill_tree(proc.pid)  # mid-load: no drain, no shutdown hook
    proc.wait(timeout=30)
    with pytest.raises(httpx.HTTPError):  # really gone: nothing answers on its port
        httpx.get(f"{a}/readyz", timeout=5)
    stop_load.set()
    for t in threads:
        t.join(timeout=60)
    assert len(acked) >= 20
    engine = sqlalchemy.create_engine(pg_url)
    with engine.connect() as conn:
        stored = {r[0] for r in conn.execute(sqlalchemy.text("SELECT request_id FROM feedback"))}
    engine.dispose()
    assert set(acked) <= stored, set(acked) - stored
    assert route(b, query("arc-challenge", 1))["llm"]  # the other replica serves on
