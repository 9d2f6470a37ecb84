"""The online state shared through a real Redis (127.0.0.1:6379): what one replica changes
every other sees, nothing is lost to concurrent writers, a restart resumes."""

from __future__ import annotations

import os
import secrets
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from _routing import fast_config, make_task, price_table

from mixllm.core.errors import StateStoreError, UnknownLLMError
from mixllm.routing.redis_state import RedisStateStore
from mixllm.routing.router import MixLLMRouter

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]

REDIS_URL = os.environ.get("MIXLLM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CODE_Q = "Write a Python function to sort a list of numbers."


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("router") / "r"
    MixLLMRouter(fast_config(), prices=price_table()).fit(make_task()).save(path)
    return path


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"mixllm-test:{secrets.token_hex(4)}"
    yield name
    RedisStateStore.from_url(REDIS_URL, name).clear()


def replica(saved: Path, prefix: str) -> MixLLMRouter:
    """A router process of its own: its own Redis connection, the same shared state."""
    return MixLLMRouter.load(saved, store=RedisStateStore.from_url(REDIS_URL, prefix))


def _quality(router: MixLLMRouter, llm: str) -> float:
    pred = router.predict([CODE_Q])
    return float(pred.quality[0, pred.llms.index(llm)])


def test_removal_on_one_replica_is_seen_by_the_other(saved, prefix):
    a, b = replica(saved, prefix), replica(saved, prefix)
    a.remove_llm("cheap-coder")
    picks = {d.llm for d in b.route_batch(make_task(60, seed=3).queries, budget_pct=10)}
    assert "cheap-coder" not in picks
    with pytest.raises(UnknownLLMError):
        b.route(CODE_Q, candidates=["cheap-coder"])
    b.add_llm("newcomer", input_price=1e-8, output_price=1e-8)
    assert "newcomer" in a.llms_ and "cheap-coder" not in a.llms_


def test_feedback_on_one_replica_changes_the_others_predictions(saved, prefix):
    a, b = replica(saved, prefix), replica(saved, prefix)
    before = _quality(b, "premium")
    for _ in range(50):
        a.update(CODE_Q, "premium", quality=0.0)
    assert _quality(b, "premium") < before - 0.3


def test_concurrent_writers_lose_no_update(saved, prefix):
    routers = [replica(saved, prefix) for _ in range(3)]

    def work(r: MixLLMRouter) -> None:
        for _ in range(10):
            r.update(CODE_Q, "cheap-reader", quality=1.0)

    threads = [threading.Thread(target=work, args=(r,)) for r in routers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = replica(saved, prefix).store.read()
    assert state.bandit.n_updates[state.bandit.llms.index("cheap-reader")] == 30


def test_a_restarted_replica_resumes_the_shared_state(saved, prefix):
    a = replica(saved, prefix)
    a.remove_llm("cheap-reader")
    a.update(CODE_Q, "premium", quality=0.0)
    del a
    again = replica(saved, prefix)  # loading seeds only an empty store
    assert "cheap-reader" not in again.llms_
    assert again.store.read().bandit.n_updates.sum() == 1


def test_unreachable_redis_is_a_clear_error():
    with pytest.raises(StateStoreError, match="cannot reach the Redis state store"):
        RedisStateStore.from_url("redis://127.0.0.1:1/0")
