"""The retraining loop end to end with the default gate settings: feedback through the
in-process app, a retraining run (a real Prefect flow in its own process) that uses all of
it, the gate's decision, and the app hot-swapping the new champion; then feedback that flips
outcomes, whose retraining the gate keeps out while the app goes on serving the champion.

v1 is trained by the real pipeline, so the registry has its trusted evaluation set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixllm.registry import stores
from tests.servers import prefect_server
from tests.tiny_data import LLMS, SPECIALISTS, STRONG, query, tiny_frame

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.timeout(1500)]

HONEST = 24  # chat requests with honest graded feedback


@pytest.fixture(scope="module")
def prefect_api(svc_root: Path, mlflow_uri: str) -> Iterator[str]:
    """A real Prefect server for the flow runs of this module."""
    root = svc_root / "loop-prefect"
    root.mkdir(exist_ok=True)
    with prefect_server(root / "server", root.with_suffix(".log"), os.environ) as url:
        yield url


def run_flow(call: str, prefect_api: str, svc_root: Path) -> dict:
    """Run ``flows.training.<call>`` in a fresh process (Prefect stays out of the app's
    process); the TrainResult as a dict."""
    code = (
        "import dataclasses, json\n"
        "from flows.training import train_flow, retrain_flow\n"
        f"result = {call}\n"
        "print('RESULT ' + json.dumps(dataclasses.asdict(result) if result else None))\n"
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PREFECT_HOME": str(svc_root / "loop-prefect-client"),
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


@pytest.fixture(scope="module")
def flows(prefect_api: str, svc_root: Path, tiny_csv: Path, fast_config_path: Path, service_env):
    """``flows(name, **params)``: run train_flow / retrain_flow on the tiny data, defaults
    for every gate setting."""

    def call(name: str, **params: str) -> dict:
        args = {"data": str(tiny_csv), "config_path": str(fast_config_path), **params}
        text = ", ".join(f"{k}={v!r}" for k, v in args.items())
        return run_flow(f"{name}({text})", prefect_api, svc_root)

    first = call("train_flow")
    assert (first["version"], first["alias"]) == ("1", "champion")
    return call


@pytest.fixture(scope="module")
def app(flows, service_env: dict[str, str]) -> Iterator:
    """The BentoML app in process, serving the pipeline's v1."""
    from starlette.testclient import TestClient

    from flows.service import MixLLMService
    from tests.service.conftest import _forget_bentoml_metrics

    try:
        with TestClient(MixLLMService.to_asgi(), raise_server_exceptions=False) as client:
            yield client
    finally:
        _forget_bentoml_metrics()


def wait_version(app, version: str, timeout_s: float = 60.0) -> dict:
    """Poll /healthz until ``version`` serves; its last answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        health = app.get("/healthz").json()
        if health["router_version"] == version:
            return health
        assert time.monotonic() < deadline, health
        time.sleep(0.5)


def test_feedback_retrains_gates_and_hot_swaps(app, flows, service_env) -> None:
    assert wait_version(app, "1")["router_version"] == "1"
    tasks = list(SPECIALISTS)
    for i in range(HONEST):
        q = query(tasks[i % 3], i)
        chat = app.post(
            "/v1/chat/completions",
            json={"model": "mixllm", "messages": [{"role": "user", "content": q}]},
        )
        assert chat.status_code == 200, chat.text
        routing = chat.json()["mixllm"]
        fb = app.post(
            "/feedback",
            json={"request_id": routing["request_id"], "quality": routing["recorded_quality"]},
        )
        assert fb.status_code == 200, fb.text
    result = flows("retrain_flow", feedback_url=service_env["MIXLLM_FEEDBACK_URL"])
    assert result["feedback_rows"] == HONEST  # every stored row
    assert (result["version"], result["alias"]) == ("2", "champion"), result["reason"]
    health = wait_version(app, "2")
    assert health["champion"]["watermark"] is not None
    routed = app.post("/route", json={"query": query("mbpp", 33)}).json()
    # the new champion serves, and routes a coding query to an LLM that gets it right
    # (the specialist or the strong one, whichever its calibrated budget affords)
    assert routed["router_version"] == "2" and routed["llm"] in (SPECIALISTS["mbpp"], STRONG)


def test_flipped_feedback_is_stored_but_its_retraining_stays_out(app, flows, service_env) -> None:
    wait_version(app, "2")
    frame = tiny_frame()
    flipped = 0
    for _, row in frame.iloc[::2].iterrows():
        q = query(row["eval_name"], int(row["sample_id"].rsplit(".", 1)[1]))
        for llm in LLMS:
            routed = app.post("/route", json={"query": q, "candidates": [llm]}).json()
            fb = app.post(
                "/feedback",
                json={"request_id": routed["request_id"], "quality": 1.0 - float(row[llm])},
            )
            assert fb.status_code == 200, fb.text
            flipped += 1
    result = flows("retrain_flow", feedback_url=service_env["MIXLLM_FEEDBACK_URL"])
    assert result["feedback_rows"] == HONEST + flipped  # earlier feedback was not dropped
    assert result["alias"] == "challenger", result["reason"]
    assert "champion v2" in result["reason"]
    version = stores.client().get_model_version(stores.MODEL_NAME, result["version"])
    assert version.tags[stores.TAG_GATE_REASON] == result["reason"]
    assert stores.current_alias_version(stores.MODEL_NAME, stores.CHAMPION) == "2"
    time.sleep(2)  # several champion polls: nothing may swap
    assert app.get("/healthz").json()["router_version"] == "2"
