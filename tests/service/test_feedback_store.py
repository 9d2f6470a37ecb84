"""The feedback store on SQLite (WAL, several processes) and on the real PostgreSQL."""

from __future__ import annotations

import multiprocessing
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from mixllm.core.errors import DuplicateFeedbackError, InvalidRequestError, UnknownRequestError
from mixllm.registry.feedback import FEEDBACK_COLUMNS, FeedbackStore

pytestmark = [pytest.mark.service, pytest.mark.timeout(300)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FeedbackStore:
    """A store on a fresh SQLite file, or on fresh tables of the session's PostgreSQL DB."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fb.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    s = FeedbackStore(url)
    yield s
    if request.param == "postgres":
        from mixllm.registry.feedback_schema import Base

        Base.metadata.drop_all(s.engine)  # each test starts from empty tables
    s.close()


def log(store: FeedbackStore, rid: str, query: str = "q", llm: str = "a") -> None:
    store.log_decision(
        rid,
        query=query,
        llm=llm,
        tags=["domain:x"],
        router_version="7",
        budget_usd=0.001,
        candidates=[{"llm": llm, "score": 1.0}],
        decision_ms=3.0,
    )


def test_decision_and_feedback_round_trip(store: FeedbackStore) -> None:
    log(store, "r1", query="what is 2+2", llm="gpt")
    log(store, "r2", query="write code", llm="coder")
    assert store.count_decisions() == 2
    record = store.add_feedback("r1", quality=0.25, cost=0.002, latency_s=1.5)
    assert (record.query, record.llm, record.router_version) == ("what is 2+2", "gpt", "7")
    store.add_feedback("r2", thumbs_up=True)
    log(store, "r3", query="write more code", llm="coder")
    store.add_feedback("r3", thumbs_up=False)
    assert store.count_feedback() == 3
    df = store.feedback_since(None)
    assert list(df.columns) == FEEDBACK_COLUMNS
    assert df["quality"].tolist() == [0.25, 1.0, 0.0]
    assert df["llm"].tolist() == ["gpt", "coder", "coder"]
    assert df["feedback_id"].is_monotonic_increasing
    assert df["cost"].iloc[0] == 0.002 and pd.isna(df["cost"].iloc[1])
    assert str(df["created_at"].dt.tz) == "UTC"


def test_reads_are_keyed_by_id_and_a_window_keeps_the_newest(store: FeedbackStore) -> None:
    for i in range(5):
        log(store, f"r{i}")
        store.add_feedback(f"r{i}", quality=i / 4)
    ids = store.feedback_since()["feedback_id"].tolist()
    assert ids == sorted(ids) and store.max_feedback_id() == ids[-1]
    assert store.count_feedback(after_id=ids[1]) == 3
    assert store.feedback_since(ids[1])["feedback_id"].tolist() == ids[2:]
    assert store.feedback_since(last=2)["quality"].tolist() == [0.75, 1.0]
    assert store.feedback_since(ids[-1]).empty
    with pytest.raises(InvalidRequestError, match="window"):
        store.feedback_since(last=0)


def test_one_feedback_per_request(store: FeedbackStore) -> None:
    log(store, "r1")
    store.add_feedback("r1", thumbs_up=True)
    with pytest.raises(DuplicateFeedbackError, match="r1"):
        store.add_feedback("r1", thumbs_up=False)
    assert store.feedback_since()["quality"].tolist() == [1.0]


def test_racing_repeats_keep_exactly_one(store: FeedbackStore) -> None:
    log(store, "r1")

    def add(i: int) -> str:
        try:
            store.add_feedback("r1", quality=i / 10)
            return "stored"
        except DuplicateFeedbackError:
            return "duplicate"

    with ThreadPoolExecutor(10) as pool:
        outcomes = sorted(pool.map(add, range(10)))
    assert outcomes == ["duplicate"] * 9 + ["stored"]
    assert store.count_feedback() == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"quality": 1.5}, InvalidRequestError, "quality"),
        ({"quality": -0.01}, InvalidRequestError, "quality"),
        ({"quality": float("nan")}, InvalidRequestError, "quality"),
        ({}, InvalidRequestError, "quality"),
        ({"quality": 1.0, "cost": -1.0}, InvalidRequestError, "cost"),
        ({"quality": 1.0, "cost": 1e308}, InvalidRequestError, "cost"),
        ({"quality": 1.0, "cost": float("inf")}, InvalidRequestError, "cost"),
        ({"quality": 1.0, "latency_s": 1e9}, InvalidRequestError, "latency_s"),
        ({"quality": 1.0, "latency_s": float("nan")}, InvalidRequestError, "latency_s"),
        ({"thumbs_up": "yes"}, InvalidRequestError, "thumbs_up"),
    ],
)
def test_bad_feedback_is_rejected_and_not_stored(store, kwargs, error, needle) -> None:
    log(store, "r1")
    with pytest.raises(error, match=needle):
        store.add_feedback("r1", **kwargs)
    assert store.count_feedback() == 0


def test_unknown_request_id(store: FeedbackStore) -> None:
    with pytest.raises(UnknownRequestError, match="nope"):
        store.add_feedback("nope", quality=1.0)
    assert store.count_feedback() == 0


def test_concurrent_writers_lose_nothing(store: FeedbackStore) -> None:
    n = 60
    for i in range(n):
        log(store, f"r{i}")
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda i: store.add_feedback(f"r{i}", quality=i / n), range(n)))
    assert store.count_feedback() == n
    assert sorted(store.feedback_since(None)["quality"]) == sorted(i / n for i in range(n))


def test_one_trigger_per_gap(store: FeedbackStore) -> None:
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda _: store.claim_trigger(7, 5, 3600), range(8)))
    granted = [c for c in claims if c is not None]
    assert len(granted) == 1
    store.finish_trigger(granted[0], flow_run_id="run-1", error=None)
    assert store.claim_trigger(9, 5, 3600) is None
    assert store.last_trigger() is not None
    assert store.last_trigger_feedback_id() == 7


def _worker(url: str, prefix: str, n: int) -> None:
    store = FeedbackStore(url)
    for i in range(n):
        store.add_feedback(f"{prefix}{i}", thumbs_up=bool(i % 2))
    store.close()


def test_several_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = FeedbackStore(url)
    procs, per = 4, 25
    for p in range(procs):
        for i in range(per):
            log(store, f"p{p}-{i}")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_worker, args=(url, f"p{p}-", per)) for p in range(procs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * procs
    assert store.count_feedback() == procs * per
    mode = store.engine.connect().exec_driver_sql("PRAGMA journal_mode").scalar()
    assert mode == "wal"
    store.close()


def test_default_url_is_under_mixllm_home(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MIXLLM_FEEDBACK_URL", raising=False)
    monkeypatch.setenv("MIXLLM_HOME", str(tmp_path / "home"))
    store = FeedbackStore()
    assert store.url == f"sqlite:///{tmp_path / 'home' / 'feedback.db'}"
    log(store, f"r-{secrets.token_hex(3)}")
    assert (tmp_path / "home" / "feedback.db").exists()
    store.close()


def _log_then_die(url: str, ids: list[str], ready) -> None:
    """Child process: log decisions, say so, and die by SIGKILL (no cleanup, no flush)."""
    import os
    import signal

    child = FeedbackStore(url)
    for rid in ids:
        log(child, rid)
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_logged_decision_survives_a_killed_process(store: FeedbackStore) -> None:
    """log_decision skips the fsync but a returned call is committed: SIGKILL loses nothing,
    and feedback on every such request_id is accepted at once by another process."""
    ids = [secrets.token_hex(8) for _ in range(20)]
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_log_then_die, args=(store.url, ids, ready))
    proc.start()
    proc.join(120)
    assert ready.is_set() and proc.exitcode == -9
    for rid in ids:
        assert store.add_feedback(rid, quality=1.0).request_id == rid
    assert store.count_feedback() == len(ids)
