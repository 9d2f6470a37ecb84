"""The registry as deployed: a real `mlflow server` over HTTP, PostgreSQL as its backend
store and proxied artifact storage. The pipeline registers a router through it and the
service (the same `RoutingService` that `mixllm serve` builds from the environment) loads
the champion through it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mixllm.registry import stores as registry
from tests.servers import mlflow_server
from tests.stores import patched_env, postgres_database

pytestmark = [pytest.mark.flow, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def tracking_server(session_env: Path) -> Iterator[tuple[str, Path]]:
    """An MLflow server on a brand-new PostgreSQL database; its URL and artifact directory."""
    artifacts = session_env / "proxied-artifacts"
    log = session_env / "mlflow-server.log"
    with (
        postgres_database("mixllm_server") as db,
        mlflow_server(db, artifacts, log, os.environ) as url,
        # Clients know only the URL: no artifact root of their own, no database.
        patched_env({"MLFLOW_TRACKING_URI": url}, unset=["MIXLLM_ARTIFACT_ROOT"]),
    ):
        yield url, artifacts


def test_pipeline_registers_and_service_serves_through_the_server(
    tracking_server: tuple[str, Path], prefect_api: str, tiny_data: Path, fast_config: Path
) -> None:
    from flows.training import train_flow
    from mixllm.serving.service import RoutingService
    from mixllm.serving.settings import ServiceSettings

    url, artifacts = tracking_server
    result = train_flow(data=str(tiny_data), config_path=str(fast_config))
    assert result.tracking_uri == url
    assert (result.version, result.alias) == ("1", "champion")
    run = registry.client().get_run(result.run_id)
    # the server proxies artifacts: the run stores a server URI, the files land in its dir
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    stored = {p.name for p in artifacts.rglob("*") if p.is_file()}
    assert {"model.json", "arrays.npz", "benchmark.md"} <= stored, sorted(stored)

    # what `mixllm serve` builds from the environment, minus the watcher and the trigger
    settings = replace(ServiceSettings.from_env(), poll_s=0, retrain_threshold=0)
    assert settings.tracking_uri == url
    service = RoutingService(settings)
    try:
        assert service.ready()
        decision = service.decide("Write a Python function that reverses a list.")
        assert decision["router_version"] == "1"
        assert decision["llm"] in result.evaluation_markdown
    finally:
        service.stop()
