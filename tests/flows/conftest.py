"""Real stores for the pipeline tests: a Prefect server subprocess, MLflow on SQLite/PostgreSQL.

Each server is started with its own Popen, waited for on its health URL and stopped by its
PID (its process group) at the end of the session.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.flows._tiny import write_tiny

PG_ADMIN_URL = os.environ.get("MIXLLM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float, log: Path) -> None:
    """Poll ``url`` until it answers 200; fail with the server log if it dies or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not healthy after {timeout_s}s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server started with start_new_session=True: its own process group, by its PID."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def session_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Quiet, isolated homes for Prefect, MixLLM caches and MLflow artifacts."""
    root = tmp_path_factory.mktemp("flows")
    values = {
        "PREFECT_HOME": str(root / "prefect-client"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MIXLLM_HOME": str(root / "mixllm-home"),
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in values.items():
            mp.setenv(key, value)
        yield root


@pytest.fixture(scope="session")
def prefect_api(session_env: Path) -> Iterator[str]:
    """A real `prefect server start` on a free port; flows in this session report to it."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )

    port = free_port()
    home = session_env / "prefect-server"
    log = session_env / "prefect-server.log"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/api/health", proc, 120, log)
        url = f"http://127.0.0.1:{port}/api"
        updates = {
            PREFECT_API_URL: url,
            PREFECT_HOME: os.environ["PREFECT_HOME"],
            PREFECT_SERVER_ANALYTICS_ENABLED: False,
        }
        with temporary_settings(updates=updates):
            yield url
            _drain_prefect_clients()
    finally:
        stop(proc)


def _drain_prefect_clients() -> None:
    """Send queued logs and events while the server is still up (else exit waits on retries)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    EventsWorker.drain_all(timeout=30)


@pytest.fixture(scope="session")
def tiny_data(session_env: Path) -> Path:
    """The tiny RouterBench-format CSV (120 queries, 4 LLMs)."""
    return write_tiny(session_env / "tiny.csv")


@pytest.fixture(scope="session")
def fast_config(session_env: Path) -> Path:
    """A router config that trains in seconds: no encoder fine-tuning, tiny LightGBM."""
    from mixllm.config import MixLLMConfig

    config = MixLLMConfig.model_validate(
        {
            "encoder": {"finetune": False, "cache_dir": str(session_env / "embeddings")},
            "predictor": {
                "n_estimators": 10,
                "n_bags": 1,
                "min_child_samples": 3,
                "num_leaves": 4,
                "threads": 1,
            },
            "decision": {"lambda_grid_size": 12},
        }
    )
    path = session_env / "fast.yaml"
    config.to_yaml(path)
    return path


@pytest.fixture(scope="module")
def mlflow_store(session_env: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh SQLite MLflow store (tracking + registry) for one test module."""
    folder = session_env / f"mlflow-{request.module.__name__.rsplit('.', 1)[-1]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        mp.setenv("MIXLLM_ARTIFACT_ROOT", str(folder / "artifacts"))
        yield os.environ["MLFLOW_TRACKING_URI"]


@pytest.fixture
def postgres_store(session_env: Path) -> Iterator[str]:
    """MLflow on a brand-new PostgreSQL database, dropped afterwards."""
    import sqlalchemy

    name = f"mixllm_test_{secrets.token_hex(4)}"
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not usable: {exc}")
    uri = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_URI", uri)
            mp.setenv("MIXLLM_ARTIFACT_ROOT", str(session_env / name / "artifacts"))
            yield uri
    finally:
        # WITH (FORCE) closes the connections mlflow's engine still pools.
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
