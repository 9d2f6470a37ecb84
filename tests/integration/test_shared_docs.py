"""The service's shared state stores on real engines (a SQLite file, PostgreSQL, Redis):
concurrent writers lose no update, and a process killed with SIGKILL leaks no in-flight
count."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixllm.routing.shared_state import update_doc
from mixllm.serving.inflight import SharedInFlight
from mixllm.serving.shared_state import open_docs
from tests.stores import postgres_database

pytestmark = [pytest.mark.timeout(120)]

REDIS_URL = os.environ.get("MIXLLM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A state store URL of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
    elif request.param == "postgres":
        with postgres_database("mixllm_state") as url:
            yield url
    else:
        yield REDIS_URL


def _increment(doc: dict | None) -> tuple[dict, None]:
    doc = doc or {"n": 0}
    return {"n": doc["n"] + 1}, None


def test_concurrent_writers_lose_no_update(state_url: str) -> None:
    key = f"test:{secrets.token_hex(4)}"
    stores = [open_docs(state_url) for _ in range(3)]  # one connection pool each

    def work(docs) -> None:
        for _ in range(20):
            update_doc(docs, key, _increment)

    threads = [threading.Thread(target=work, args=(d,)) for d in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    version, doc = stores[0].get(key)
    stores[0].delete(key)
    assert doc == {"n": 60} and version == 59  # created at 0, then 59 swaps


CHILD = """
import sys, time
from mixllm.serving.inflight import SharedInFlight
from mixllm.serving.shared_state import open_docs
counts = SharedInFlight(open_docs(sys.argv[1]), "test:in-flight", beat_s=0.2, ttl_s=1.0)
counts.enter("llm-a")
counts.start()
print("in flight", flush=True)
time.sleep(600)
"""


def test_a_killed_process_leaks_no_in_flight_count(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert child.stdout.readline().strip() == "in flight"
        here = SharedInFlight(open_docs(url), "test:in-flight", beat_s=0.2, ttl_s=1.0)
        here.enter("llm-a")
        _wait(lambda: (here.beat(), here.snapshot())[1] == {"llm-a": 2})
        child.send_signal(signal.SIGKILL)  # no goodbye: only the expiry can drop its entry
        child.wait(timeout=10)
        _wait(lambda: (here.beat(), here.snapshot())[1] == {"llm-a": 1})
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)


def _wait(ok, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_a_malformed_in_flight_entry_is_dropped_and_the_heartbeat_lives(state_url: str) -> None:
    # review finding: {"zz": {"counts": {...}}} (no "until") killed the heartbeat thread
    # with a KeyError and in-flight sharing stopped silently
    key = f"test:inflight:{secrets.token_hex(4)}"
    docs = open_docs(state_url)
    docs.create(key, {"zz": {"counts": {"claude-v2": 7}}, "yy": "foreign"})
    shared = SharedInFlight(docs, key, beat_s=0.1, ttl_s=5.0)
    other = SharedInFlight(open_docs(state_url), key, beat_s=0.1, ttl_s=5.0)
    other.enter("claude-v2")
    try:
        other.beat()
        shared.start()
        _wait(lambda: shared.snapshot() == {"claude-v2": 1})
        time.sleep(0.3)
        assert shared._thread is not None and shared._thread.is_alive()
        assert shared.error is None
        assert "zz" not in docs.get(key)[1] and "yy" not in docs.get(key)[1]
    finally:
        shared.stop()
        docs.delete(key)


def _write_raw(state_url: str, key: str, text: str) -> None:
    """Store ``text`` as the document under ``key`` bypassing every check (a foreign
    writer, a corrupted row)."""
    docs = open_docs(state_url)
    docs.create(key, {})
    if state_url.startswith("redis"):
        docs.client.set(f"{docs.prefix}:{key}", text)
        return
    from sqlalchemy import text as sql

    with docs.engine.begin() as conn:
        conn.execute(sql("UPDATE mixllm_state SET doc = :d WHERE key = :k"), {"d": text, "k": key})


@pytest.mark.parametrize(
    "raw", ["{not json", "[1, 2, 3]", '{"format_version": 1, "hello": "foreign"}']
)
def test_a_corrupted_state_document_is_a_state_store_error_naming_its_key(
    state_url: str, raw: str
) -> None:
    from mixllm.core.errors import StateStoreError
    from mixllm.routing.shared_state import SharedStateStore

    key = f"test:state:{secrets.token_hex(4)}"
    _write_raw(state_url, key, raw)
    try:
        with pytest.raises(StateStoreError, match=key):
            SharedStateStore(open_docs(state_url), key).read()
    finally:
        open_docs(state_url).delete(key)
