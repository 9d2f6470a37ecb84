"""End to end on real processes: `mixllm serve` (BentoML) driven by the official `openai`
client through the replay backend, and the feedback -> Prefect retraining -> new champion ->
hot swap loop with a real Prefect server, a served retraining deployment and MLflow on SQLite.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import VENV_BIN, free_port, prefect_server, running
from tests.tiny_data import SPECIALISTS, answer, query

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.timeout(1200)]

THRESHOLD = 6
DEPLOYMENT = "mixllm-retrain/mixllm-retrain"


@pytest.fixture(scope="module")
def e2e_env(svc_root: Path, mlflow_uri: str) -> dict[str, str]:
    """Environment shared by every process of this module."""
    root = svc_root / "e2e"
    root.mkdir(exist_ok=True)
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "MIXLLM_FEEDBACK_URL": f"sqlite:///{root / 'feedback.db'}",
        "MIXLLM_STATE_URL": f"sqlite:///{root / 'state.db'}",
        "PREFECT_HOME": str(root / "prefect-client"),
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    }


@pytest.fixture(scope="module")
def prefect_api(svc_root: Path, e2e_env: dict[str, str]) -> Iterator[str]:
    """A real `prefect server start` on a free port."""
    with prefect_server(
        svc_root / "prefect-server", svc_root / "prefect-server.log", e2e_env
    ) as url:
        yield url


@pytest.fixture(scope="module")
def retrain_runner(
    svc_root: Path,
    e2e_env: dict[str, str],
    prefect_api: str,
    tiny_csv: Path,
    fast_config_path: Path,
) -> Iterator[None]:
    """`retrain_flow` served as a deployment (the process that executes triggered runs).

    Tolerances are opened wide: this test is about the service picking up what the gate
    promotes, not about the gate (the pipeline's tests cover it).
    """
    script = textwrap.dedent(f"""
        from flows.training import retrain_flow
        retrain_flow.serve(name="mixllm-retrain", parameters={{
            "data": {str(tiny_csv)!r}, "config_path": {str(fast_config_path)!r},
            "feedback_url": {e2e_env["MIXLLM_FEEDBACK_URL"]!r},
            "aiq_tolerance": 1.0, "quality_tolerance": 1.0}})
    """)
    with running(
        [str(VENV_BIN / "python"), "-c", script],
        env={**e2e_env, "PREFECT_API_URL": prefect_api},
        log=svc_root / "retrain-runner.log",
        health_url=f"{prefect_api}/deployments/name/{DEPLOYMENT}",
    ):
        yield


@pytest.fixture(scope="module")
def served(
    svc_root: Path,
    e2e_env: dict[str, str],
    prefect_api: str,
    tiny_csv: Path,
    fast_config_path: Path,
    retrain_runner: None,
) -> Iterator[str]:
    """`mixllm serve --port N` on an empty registry: it trains v1 first, then runs
    `bentoml serve` over it."""
    port = free_port()
    log = svc_root / "mixllm-serve.log"
    env = {
        **e2e_env,
        "PREFECT_API_URL": prefect_api,
        "MIXLLM_CHAMPION_POLL_S": "1",
        "MIXLLM_RETRAIN_THRESHOLD": str(THRESHOLD),
        "MIXLLM_RETRAIN_MIN_GAP_S": "2",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # BentoML manages its own
    cmd = [
        str(VENV_BIN / "mixllm"),
        "serve",
        "--port",
        str(port),
        "--data",
        str(tiny_csv),
        "--config",
        str(fast_config_path),
    ]
    readyz = f"http://127.0.0.1:{port}/readyz"
    with running(cmd, env=env, log=log, health_url=readyz, timeout_s=420):
        assert "Registered mixllm-router version 1 as @champion" in log.read_text()
        yield f"http://127.0.0.1:{port}"


def test_openai_client_talks_to_the_service(served: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0)
    r = client.chat.completions.create(
        model="mixllm:0.5", messages=[{"role": "user", "content": query("winogrande", 5)}]
    )
    assert r.model == SPECIALISTS["winogrande"]
    assert r.choices[0].message.content == answer(r.model, "winogrande.5")
    routing = r.model_extra["mixllm"]
    assert routing["router_version"] == "1" and routing["backend"]["match"] == "exact"

    stream = client.chat.completions.create(
        model="mixllm", stream=True, messages=[{"role": "user", "content": query("mbpp", 6)}]
    )
    chunks = list(stream)
    assert {c.model for c in chunks} == {SPECIALISTS["mbpp"]}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer(SPECIALISTS["mbpp"], "mbpp.6")

    from openai import BadRequestError

    with pytest.raises(BadRequestError, match="model must be 'mixllm'"):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])

    metrics = httpx.get(f"{served}/metrics").text
    assert 'mixllm_requests_total{endpoint="/v1/chat/completions",status="200"}' in metrics
    assert "mixllm_decision_seconds_bucket" in metrics and "mixllm_feedback_rows" in metrics


def test_feedback_triggers_retraining_and_the_service_swaps_in_the_new_champion(
    served: str,
) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0)
    tasks = list(SPECIALISTS)
    for i in range(THRESHOLD):
        r = client.chat.completions.create(
            model="mixllm", messages=[{"role": "user", "content": query(tasks[i % 3], 20 + i)}]
        )
        routing = r.model_extra["mixllm"]
        # The replay backend reports the recorded quality: feed it back as the user would.
        fb = httpx.post(
            f"{served}/feedback",
            json={"request_id": routing["request_id"], "quality": routing["recorded_quality"]},
        )
        assert fb.status_code == 200, fb.text

    deadline = time.monotonic() + 600
    health = httpx.get(f"{served}/healthz").json()
    while health["router_version"] != "2":
        assert time.monotonic() < deadline, health
        last = health["retraining"]["last"] or {}
        assert "error" not in last, last
        time.sleep(2)
        health = httpx.get(f"{served}/healthz").json()
    assert health["feedback_count"] >= THRESHOLD
    assert health["retraining"]["last"]["flow_run_id"]
    assert health["champion"]["watermark"]  # v2 knows which feedback it was trained on
    r = httpx.post(f"{served}/route", json={"query": query("mbpp", 3)})
    assert r.status_code == 200 and r.json()["router_version"] == "2"
