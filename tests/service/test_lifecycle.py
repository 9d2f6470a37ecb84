"""Issue #9, lifecycle in process: health follows the registry (rollback -> ok, deleted alias
reported), a champion that cannot load at start is not an outage (the last loaded version
serves, and says so), readiness is 503 while nothing can serve, and the retraining trigger
is bounded on an unresponsive Prefect API and never starts a second run while one is
pending."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mixllm.registry.feedback import FeedbackStore
from mixllm.serving import RoutingService, ServiceSettings
from mixllm.serving.metrics import service_metrics
from mixllm.serving.retraining import RetrainTrigger
from tests.service._registry import register_broken, register_router
from tests.stores import patched_env
from tests.tiny_data import query

pytestmark = [pytest.mark.service, pytest.mark.timeout(180)]


def wait_for(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        time.sleep(0.2)


def health(client) -> dict:
    return client.get("/healthz").json()


def set_alias(version: str | None) -> None:
    from mixllm.registry import stores as registry

    c = registry.client()
    if version is None:
        c.delete_registered_model_alias(registry.MODEL_NAME, registry.CHAMPION)
    else:
        c.set_registered_model_alias(registry.MODEL_NAME, registry.CHAMPION, version)


def test_rollback_after_a_failed_champion_is_ok_again(client) -> None:
    serving = health(client)["router_version"]
    broken = register_broken()
    wait_for(lambda: health(client)["champion"]["state"] == "degraded")
    body = health(client)
    assert body["champion"]["failed_version"] == broken
    # The public status names the version, never the exception class or a path.
    assert "nonexistent" not in body["champion"]["error"]
    assert "Error" not in body["champion"]["error"]
    set_alias(serving)  # the operator rolls back
    wait_for(lambda: health(client)["status"] == "ok")
    body = health(client)
    assert body["router_version"] == serving and body["champion"]["error"] is None


def test_a_deleted_alias_is_reported_not_ok(client) -> None:
    serving = health(client)["router_version"]
    set_alias(None)
    try:
        wait_for(lambda: health(client)["status"] == "degraded")
        assert "no champion alias" in health(client)["champion"]["error"]
        assert client.post("/route", json={"query": query("mbpp", 1)}).status_code == 200
    finally:
        set_alias(serving)
    wait_for(lambda: health(client)["status"] == "ok")


def test_start_with_a_broken_champion_serves_the_last_loaded(
    mlflow_uri: str, router_dir: Path, service_env: dict[str, str], tmp_path: Path
) -> None:
    good = register_router(router_dir)
    broken = register_broken()
    settings = ServiceSettings(poll_s=0, retrain_threshold=0)
    with patched_env({"MIXLLM_HOME": str(tmp_path / "home")}):
        service = RoutingService(settings)
    try:
        assert service.ready()
        body = service.health()
        assert body["status"] == "degraded" and body["router_version"] == good
        assert body["champion"]["state"] == "fallback"
        assert f"v{good}" in body["champion"]["fallback"]
        assert body["champion"]["failed_version"] == broken
        assert service.decide(query("mbpp", 2))["router_version"] == good
    finally:
        service.stop()
        set_alias(good)


def test_nothing_to_serve_is_not_ready(
    mlflow_uri: str, service_env: dict[str, str], tmp_path: Path
) -> None:
    """A model with only a broken version: /readyz and /healthz 503, /livez 200."""
    from starlette.testclient import TestClient

    from flows.service import MixLLMService
    from tests.service.conftest import _forget_bentoml_metrics

    with patched_env({"MIXLLM_MODEL_NAME": "mixllm-router", "MIXLLM_HOME": str(tmp_path)}):
        from mixllm.registry import stores as registry

        if registry.current_alias_version(registry.MODEL_NAME, registry.CHAMPION):
            registry.client().delete_registered_model(registry.MODEL_NAME)
        register_broken()
        _forget_bentoml_metrics()
        try:
            with TestClient(MixLLMService.to_asgi(), raise_server_exceptions=False) as c:
                ready = c.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["error"]["type"] == "service_unavailable"
                resp = c.get("/healthz")
                assert resp.status_code == 503 and resp.json()["status"] == "unavailable"
                assert c.get("/livez").status_code == 200
                resp = c.post("/route", json={"query": "hi"})
                assert resp.status_code == 503 and "request_id" in resp.json()["error"]["message"]
        finally:
            _forget_bentoml_metrics()


# -- the retraining trigger ----------------------------------------------------------------


@pytest.fixture
def silent_api() -> Iterator[str]:
    """A real TCP server that accepts connections and never answers (a hung Prefect API)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/api"
    finally:
        stop.set()
        thread.join(timeout=5)
        for s in held:
            s.close()
        server.close()


def test_trigger_gives_up_fast_on_an_unresponsive_prefect_api(silent_api: str) -> None:
    from flows.service import PREFECT_TIMEOUT_S, prefect_run_active, prefect_trigger

    with patched_env({"PREFECT_API_URL": silent_api}):
        for call in (lambda: prefect_trigger("f/d")({}), lambda: prefect_run_active("x")):
            t0 = time.monotonic()
            with pytest.raises(RuntimeError, match="does not answer"):
                call()
            assert time.monotonic() - t0 < PREFECT_TIMEOUT_S + 2


def test_no_second_run_while_one_is_pending(tmp_path: Path) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path / 'fb.db'}")
    started: list[dict] = []
    pending = {"run": True}

    def trigger(parameters: dict) -> str:
        started.append(parameters)
        return f"run-{len(started)}"

    retrainer = RetrainTrigger(
        store,
        trigger,
        service_metrics(),
        threshold=1,
        min_gap_s=0,  # the gap alone would allow a new run at once
        deployment="f/d",
        active=lambda run_id: pending["run"],
    )

    def feedback(request_id: str) -> None:
        store.log_decision(request_id, query="q", llm="a")
        store.add_feedback(request_id, quality=1.0)
        retrainer.maybe_start(None)
        wait_for(lambda: not retrainer._starting.locked(), 10)

    for i in range(3):
        feedback(f"r{i}")
    assert len(started) == 1  # the first run is still pending: no second one
    assert retrainer.describe()["pending_run"] == "run-1"
    pending["run"] = False
    time.sleep(1.1)  # the store allows one trigger per second at least (its time slot)
    feedback("r9")
    wait_for(lambda: len(started) == 2, 10)
    store.close()
