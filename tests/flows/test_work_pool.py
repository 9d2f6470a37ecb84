"""Retraining as deployed: a process work pool, a real `prefect worker`, the retraining flow
deployed to the pool by `mixllm deploy-retraining`; the service's feedback trigger (the
same callables `mixllm serve` wires) starts a run that the worker runs to completion."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixllm.registry import stores as registry
from mixllm.registry.feedback import FeedbackStore
from tests.servers import VENV_BIN, free_port, running
from tests.stores import patched_env
from tests.tiny_data import SPECIALISTS

pytestmark = [pytest.mark.flow, pytest.mark.slow, pytest.mark.timeout(600)]


def cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def worker(
    mlflow_store: str, prefect_api: str, tiny_data: Path, fast_config: Path, session_env: Path
) -> Iterator[str]:
    """A process pool, the retraining deployment on it and a worker polling it; the
    deployment's "<flow>/<deployment>" name."""
    pool, name = f"mixllm-{secrets.token_hex(3)}", "retrain-on-pool"
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "PREFECT_WORKER_WEBSERVER_PORT": str(port),
    }
    cli([str(VENV_BIN / "prefect"), "work-pool", "create", pool, "--type", "process"], env)
    flow_args = ["--data", str(tiny_data), "--config", str(fast_config), "--cron", ""]
    deploy = [sys.executable, "-m", "flows.cli", "deploy-retraining", "--pool", pool]
    out = cli([*deploy, "--name", name, *flow_args], env)
    assert f"mixllm-retrain/{name}" in out
    cmd = [str(VENV_BIN / "prefect"), "worker", "start", "--pool", pool, "--with-healthcheck"]
    log = session_env / "prefect-worker.log"
    # the worker outlasted a 30 s SIGTERM grace in every run (its flow runs are done by then)
    health = f"http://127.0.0.1:{port}/health"
    with running(cmd, env=env, log=log, health_url=health, grace_s=5):
        yield f"mixllm-retrain/{name}"


def add_feedback(url: str, n: int) -> None:
    store = FeedbackStore(url)
    for i in range(n):
        rid = f"pool-{i}"
        query = f"Write a python function to merge two sorted lists, variant {i}."
        store.log_decision(rid, query=query, llm=SPECIALISTS["mbpp"], router_version="1")
        store.add_feedback(rid, quality=1.0, latency_s=0.5)
    store.close()


def test_feedback_trigger_runs_the_deployment_on_a_worker(
    worker: str, prefect_api: str, tmp_path: Path
) -> None:
    from flows.retrain_trigger import prefect_run_active, prefect_trigger
    from mixllm.serving.metrics import service_metrics
    from mixllm.serving.retraining import RetrainTrigger

    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    add_feedback(url, 4)
    store = FeedbackStore(url)
    with patched_env({"PREFECT_API_URL": prefect_api}):
        trigger = RetrainTrigger(
            store,
            prefect_trigger(worker),
            service_metrics(),
            threshold=3,
            min_gap_s=0,
            deployment=worker,
            active=prefect_run_active,
        )
        trigger.maybe_start(None)  # no champion yet: every feedback row is new
        deadline = time.monotonic() + 60
        while not (trigger.last and trigger.last.get("flow_run_id")):
            assert time.monotonic() < deadline, trigger.last
            time.sleep(0.2)
        run_id = trigger.last["flow_run_id"]
        deadline = time.monotonic() + 420
        while prefect_run_active(run_id):
            assert time.monotonic() < deadline, "the worker never finished the run"
            time.sleep(2)
    store.close()

    from prefect import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    assert run.state.is_completed(), run.state
    assert run.work_pool_name and run.parameters["feedback_url"] == url
    version = registry.current_alias_version(registry.MODEL_NAME, registry.CHAMPION)
    tags = registry.client().get_model_version(registry.MODEL_NAME, version).tags
    assert tags[registry.TAG_WATERMARK] == "4"  # trained on the 4 feedback rows


def test_deploy_retraining_puts_its_cron_schedule_on_the_server(
    prefect_api: str, tiny_data: Path, fast_config: Path
) -> None:
    """`--cron` becomes the deployment's active schedule on the Prefect server (what makes a
    worker start the retraining every night), and a bad expression is refused in one line."""
    from prefect import get_client

    pool, name = f"mixllm-{secrets.token_hex(3)}", "nightly"
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_api,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    cli([str(VENV_BIN / "prefect"), "work-pool", "create", pool, "--type", "process"], env)
    deploy = [sys.executable, "-m", "flows.cli", "deploy-retraining", "--pool", pool]
    data = ["--data", str(tiny_data), "--config", str(fast_config)]
    cli([*deploy, "--name", name, *data, "--cron", "0 3 * * *"], env)
    with patched_env({"PREFECT_API_URL": prefect_api}), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"mixllm-retrain/{name}")
    assert deployment.work_pool_name == pool
    assert [(s.schedule.cron, s.active) for s in deployment.schedules] == [("0 3 * * *", True)]

    bad = subprocess.run(
        [*deploy, "--name", "bad", *data, "--cron", "every night"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert bad.stderr.startswith("error:") and "cron" in bad.stderr and bad.stderr.count("\n") == 1
