"""Champion hot swap under load, a champion that cannot load, runtime candidate changes that
survive a swap, and the retraining trigger when no Prefect server is reachable."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mixllm.registry.feedback import FeedbackStore
from tests.service._registry import register_broken, register_router
from tests.tiny_data import SPECIALISTS, query

pytestmark = pytest.mark.service

THRESHOLD = 3


@pytest.fixture(scope="module")
def service_env(service_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The shared service environment plus a low retraining threshold."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIXLLM_RETRAIN_THRESHOLD", str(THRESHOLD))
        mp.setenv("MIXLLM_RETRAIN_MIN_GAP_S", "3600")
        yield service_env


def wait_for(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll ``check`` until it is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        time.sleep(0.2)


def health(client) -> dict:
    return client.get("/healthz").json()


def test_new_champion_swaps_in_without_failing_requests(client, router_dir: Path) -> None:
    assert health(client)["router_version"] == "1"
    results: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def traffic() -> None:
        i = 0
        while not stop.is_set():
            resp = client.post("/route", json={"query": query("arc-challenge", i % 30)})
            results.append((resp.status_code, resp.json().get("router_version")))
            i += 1

    workers = [threading.Thread(target=traffic) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        time.sleep(0.5)
        assert register_router(router_dir) == "2"
        wait_for(lambda: health(client)["router_version"] == "2")
        time.sleep(0.5)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
    assert results and all(status == 200 for status, _ in results), results[-5:]
    versions = [v for _, v in results]
    assert versions[0] == "1" and versions[-1] == "2"  # requests ran on both sides of the swap
    assert set(versions) == {"1", "2"}


def test_candidate_changes_survive_a_swap(client, router_dir: Path) -> None:
    removed = SPECIALISTS["winogrande"]
    assert client.delete(f"/llms/{removed}").status_code == 200
    try:
        version = register_router(router_dir)
        wait_for(lambda: health(client)["router_version"] == version)
        assert removed not in health(client)["llms"]
        out = client.post("/route", json={"query": query("winogrande", 2)}).json()
        assert out["router_version"] == version and out["llm"] != removed
    finally:
        client.post(
            "/llms", json={"name": removed, "input_price": 8.9e-07, "output_price": 9.1e-07}
        )
    assert removed in health(client)["llms"]


def test_broken_champion_keeps_the_old_router_and_says_so(client, router_dir: Path) -> None:
    serving = health(client)["router_version"]
    broken = register_broken()
    wait_for(lambda: health(client)["champion"]["state"] == "degraded")
    body = health(client)
    assert body["router_version"] == serving
    assert body["status"] == "degraded"
    assert body["champion"]["failed_version"] == broken
    assert f"v{broken}" in body["champion"]["error"]
    resp = client.post("/route", json={"query": query("mbpp", 1)})
    assert resp.status_code == 200 and resp.json()["router_version"] == serving
    assert "mixllm_champion_ok 0" in client.get("/metrics").text

    fixed = register_router(router_dir)
    wait_for(lambda: health(client)["router_version"] == fixed)
    assert health(client)["champion"]["state"] == "ok"
    assert "mixllm_champion_ok 1" in client.get("/metrics").text


def test_retraining_trigger_without_prefect_keeps_serving(client, service_env) -> None:
    store = FeedbackStore(service_env["MIXLLM_FEEDBACK_URL"])
    assert store.last_trigger() is None
    for i in range(THRESHOLD):
        rid = client.post("/route", json={"query": query("mbpp", i)}).json()["request_id"]
        resp = client.post("/feedback", json={"request_id": rid, "quality": 1.0})
        assert resp.status_code == 200, resp.text
    wait_for(lambda: (health(client)["retraining"]["last"] or {}).get("error") is not None)
    last = health(client)["retraining"]["last"]
    assert "PREFECT_API_URL" in last["error"]
    assert last["feedback"] >= THRESHOLD
    assert store.last_trigger() is not None
    assert client.post("/route", json={"query": query("mbpp", 3)}).status_code == 200
    assert health(client)["feedback_count"] >= THRESHOLD


class _OneVersion:
    """A champion source with one version whose router is a plain object."""

    def current_version(self) -> str:
        return "7"

    def load(self, version: str) -> object:
        return type(
            "Router", (), {"llms_": ["a"], "all_llms_": ["a"], "encoder_": None, "tagger_": None}
        )()

    def watermark(self, version: str) -> None:
        return None


def test_slow_readying_of_a_new_champion_does_not_hold_the_swap_lock() -> None:
    """Warming a new champion's encoder takes a while: candidate changes (which take the
    swap lock) must not wait for it; only the state attachment runs under the lock."""
    from mixllm.serving.champion import ChampionSlot

    lock = threading.Lock()
    held: dict[str, bool] = {}

    def ready(router: object) -> None:
        held["ready"] = lock.locked()

    def prepare(router: object, version: str) -> object:
        held["prepare"] = lock.locked()
        return router

    slot = ChampionSlot(_OneVersion(), prepare=prepare, swap_lock=lock, ready=ready)
    assert slot.check() and slot.get().version == "7"
    assert held == {"ready": False, "prepare": True}
