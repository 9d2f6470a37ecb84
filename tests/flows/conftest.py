"""Real stores for the pipeline tests: a Prefect server subprocess, MLflow on SQLite/PostgreSQL.

The server helpers live in ``tests.servers``, the stores in ``tests.stores`` and the tiny
dataset in ``tests.tiny_data`` (shared with the service tests).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import prefect_server
from tests.stores import mlflow_sqlite, patched_env, postgres_database
from tests.tiny_data import write_fast_config, write_tiny


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
    with patched_env(values):
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

    home, log = session_env / "prefect-server", session_env / "prefect-server.log"
    with prefect_server(home, log, os.environ) as url:
        updates = {
            PREFECT_API_URL: url,
            PREFECT_HOME: os.environ["PREFECT_HOME"],
            PREFECT_SERVER_ANALYTICS_ENABLED: False,
        }
        with temporary_settings(updates=updates):
            yield url
            _drain_prefect_clients()


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
    return write_fast_config(session_env / "fast.yaml", cache_dir=str(session_env / "embeddings"))


@pytest.fixture(scope="module")
def mlflow_store(session_env: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh SQLite MLflow store (tracking + registry) for one test module."""
    with mlflow_sqlite(session_env / f"mlflow-{request.module.__name__.rsplit('.', 1)[-1]}") as uri:
        yield uri


@pytest.fixture
def postgres_store(session_env: Path) -> Iterator[str]:
    """MLflow on a brand-new PostgreSQL database, dropped afterwards."""
    with postgres_database("mixllm_test") as uri:
        name = uri.rsplit("/", 1)[-1]
        values = {
            "MLFLOW_TRACKING_URI": uri,
            "MIXLLM_ARTIFACT_ROOT": str(session_env / name / "artifacts"),
        }
        with patched_env(values):
            yield uri
