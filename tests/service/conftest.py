"""Fixtures of the service tests: isolated homes, the tiny dataset, one trained router,
MLflow stores with a registered champion, and the in-process BentoML app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service._upstream import Upstream
from tests.stores import mlflow_sqlite, patched_env, postgres_database
from tests.tiny_data import write_fast_config, write_tiny


@pytest.fixture(scope="session")
def svc_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Quiet, isolated homes for MixLLM, BentoML, Prometheus and MLflow."""
    root = tmp_path_factory.mktemp("service")
    (root / "prom").mkdir()
    values = {
        "MIXLLM_HOME": str(root / "mixllm-home"),
        "BENTOML_HOME": str(root / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(root / "prom"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
    }
    unset = ("PREFECT_API_URL", "MIXLLM_FEEDBACK_URL", "MIXLLM_BACKENDS", "MIXLLM_STATE_URL")
    with patched_env(values, unset):
        yield root


@pytest.fixture(scope="session")
def tiny_csv(svc_root: Path) -> Path:
    """The tiny RouterBench-format CSV (90 queries, 4 LLMs)."""
    return write_tiny(svc_root / "tiny.csv", per_task=30)


@pytest.fixture(scope="session")
def fast_config_path(svc_root: Path) -> Path:
    """A router config that trains in seconds (no encoder fine-tuning, tiny trees)."""
    return write_fast_config(svc_root / "fast.yaml")


@pytest.fixture(scope="session")
def router_dir(svc_root: Path, tiny_csv: Path, fast_config_path: Path) -> Path:
    """One router trained on the tiny data, saved once for every test."""
    from mixllm.core.config import MixLLMConfig
    from mixllm.data.loaders import load_routerbench
    from mixllm.routing.router import MixLLMRouter

    router = MixLLMRouter(MixLLMConfig.from_yaml(fast_config_path))
    router.fit(load_routerbench(tiny_csv))
    path = svc_root / "router-v1"
    router.save(path)
    return path


@pytest.fixture(scope="module")
def mlflow_uri(svc_root: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh SQLite MLflow store for one test module."""
    with mlflow_sqlite(svc_root / f"mlflow-{request.module.__name__.rsplit('.', 1)[-1]}") as uri:
        yield uri


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """A real OpenAI-compatible HTTP upstream that answers, fails, hangs or streams."""
    with Upstream() as server:
        yield server


UPSTREAM_BEHAVIOURS = ("ok", "fail", "garbage", "slow")
CLOSED_URL = "http://127.0.0.1:9/v1"  # nothing listens on the discard port


def write_backends(path: Path, upstream: Upstream) -> Path:
    """The operator's backends file of a test service: replay (default) and one OpenAI-
    compatible backend per upstream behaviour, ``up-<behaviour>``, plus ``up-closed``."""
    lines = ["default_backend: replay", "backends:", "  - {name: replay, kind: replay}"]
    urls = {b: upstream.url(b) for b in UPSTREAM_BEHAVIOURS} | {"closed": CLOSED_URL}
    for behaviour, url in urls.items():
        lines.append(
            f"  - {{name: up-{behaviour}, kind: openai, base_url: '{url}', timeout_s: 1.0}}"
        )
    lines.append(  # a backend whose key variable the operator forgot to set
        f"  - {{name: up-nokey, kind: openai, base_url: '{upstream.url('ok')}', "
        "api_key_env: MIXLLM_TEST_UNSET_KEY}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def service_env(
    svc_root: Path, tiny_csv: Path, upstream: Upstream, request: pytest.FixtureRequest
) -> Iterator[dict[str, str]]:
    """Environment of one in-process service: its feedback DB, replay data, fast polling,
    backends (replay and the test upstream)."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    values = {
        "MIXLLM_BACKENDS": str(write_backends(svc_root / name / "backends.yaml", upstream)),
        "MIXLLM_FEEDBACK_URL": f"sqlite:///{svc_root / name / 'feedback.db'}",
        "MIXLLM_STATE_URL": f"sqlite:///{svc_root / name / 'state.db'}",
        "MIXLLM_DATA": str(tiny_csv),
        "MIXLLM_CHAMPION_POLL_S": "0.5",
        "MIXLLM_RETRAIN_THRESHOLD": "0",
    }
    with patched_env(values):
        yield values


@pytest.fixture(scope="module")
def client(mlflow_uri: str, router_dir: Path, service_env: dict[str, str]) -> Iterator:
    """The BentoML app in process (``Service.to_asgi()``) serving champion v1."""
    from starlette.testclient import TestClient

    from flows.service import MixLLMService
    from tests.service._registry import register_router

    register_router(router_dir)
    try:
        with TestClient(MixLLMService.to_asgi(), raise_server_exceptions=False) as test_client:
            yield test_client
    finally:
        _forget_bentoml_metrics()


def _forget_bentoml_metrics() -> None:
    """Unregister BentoML's request metrics so that the next module can build its own app.

    BentoML registers them in prometheus_client's global registry once per app; a second
    app in the same process would fail with DuplicateTimeseries.
    """
    from prometheus_client import REGISTRY

    collectors = {
        collector
        for name, collector in list(REGISTRY._names_to_collectors.items())
        if name.startswith("bentoml_")
    }
    for collector in collectors:
        REGISTRY.unregister(collector)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A brand-new PostgreSQL database for this session, dropped afterwards."""
    with postgres_database("mixllm_svc") as url:
        yield url
