"""The training flow end to end on a real Prefect server and a real MLflow SQLite store.

The tests of this module share one store and run in order: v1 becomes champion, a model
trained on shuffled labels becomes challenger, a failing flow changes nothing, the champion
loads and routes in a fresh process, and retraining on feedback registers a new version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mixllm.registry import stores as registry
from tests.tiny_data import LLMS, SPECIALISTS

pytestmark = [pytest.mark.flow, pytest.mark.slow]

STAGES = (
    "check_store",
    "load",
    "validate",
    "tag",
    "embed",
    "train_predictors",
    "calibrate",
    "evaluate",
    "register",
)


def snapshot(name: str = registry.MODEL_NAME) -> dict[str, object]:
    """Everything a flow could change in the registry: models, versions, aliases, tags."""
    c = registry.client()
    models = {m.name: dict(m.aliases) for m in c.search_registered_models()}
    versions = {str(v.version): dict(v.tags) for v in c.search_model_versions(f"name='{name}'")}
    return {"models": models, "versions": versions}


@pytest.fixture(scope="module")
def store(mlflow_store: str, prefect_api: str) -> str:
    """The module's MLflow store, with flows reporting to the session's Prefect server."""
    return mlflow_store


@pytest.fixture(scope="module")
def first_run(store: str, tiny_data: Path, fast_config: Path):
    """The first training run on the empty store."""
    from flows.training import train_flow

    return train_flow(data=str(tiny_data), config_path=str(fast_config))


def test_first_run_registers_version_1_as_champion(first_run, store: str) -> None:
    assert (first_run.version, first_run.alias) == ("1", "champion")
    assert registry.current_alias_version(registry.MODEL_NAME, "champion") == "1"
    assert "no champion yet" in first_run.reason
    assert set(STAGES) <= set(first_run.timings)
    assert "| mixllm |" in first_run.evaluation_markdown


def test_run_records_params_metrics_and_artifacts(first_run, store: str) -> None:
    c = registry.client()
    run = c.get_run(first_run.run_id)
    assert run.data.params["predictor.n_estimators"] == "10"
    assert run.data.params["flow.ablations"] == "none"
    for stage in STAGES:
        assert f"time_{stage}_s" in run.data.metrics, stage
    assert 0 < run.data.metrics["aiq.mixllm"] <= 1
    assert run.data.metrics["aiq.oracle"] >= run.data.metrics["aiq.random"]
    assert run.data.tags[registry.TAG_GATE] == "champion"
    assert len(run.data.tags[registry.TAG_DATA_FINGERPRINT]) == 16
    files = {
        f.path
        for d in ("evaluation", "config", "data")
        for f in c.list_artifacts(first_run.run_id, d)
    }
    assert files == {
        "evaluation/pareto.png",
        "evaluation/benchmark.md",
        "config/prices.yaml",
        "config/taxonomy.yaml",
        "config/config.yaml",
        "data/data_fingerprint.yaml",
    }
    artifacts = Path(registry.client().download_artifacts(first_run.run_id, "evaluation"))
    assert (artifacts / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    import mlflow

    router_files = mlflow.artifacts.list_artifacts(
        artifact_uri=f"models:/{registry.MODEL_NAME}/1/artifacts/router"
    )
    assert {Path(f.path).name for f in router_files} >= {
        "encoder",
        "model.json",
        "arrays.npz",
        "predictors",
        "meta.json",
        "config.yaml",
        "training.json",
    }
    version = c.get_model_version(registry.MODEL_NAME, "1")
    assert version.tags[registry.TAG_GATE_REASON] == first_run.reason
    assert version.description == first_run.reason


def test_evaluation_table_is_a_prefect_artifact(first_run, prefect_api: str) -> None:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def latest() -> list:
        async with get_client() as client:
            flt = ArtifactFilter(key=ArtifactFilterKey(any_=["mixllm-evaluation"]))
            return await client.read_artifacts(artifact_filter=flt)

    artifacts = asyncio.run(latest())
    assert artifacts and artifacts[0].type == "markdown"
    assert "| mixllm |" in artifacts[0].data


def test_shuffled_labels_become_challenger_and_champion_stays(
    first_run, store: str, tiny_data: Path, fast_config: Path
) -> None:
    from flows.training import train_flow

    worse = train_flow(
        data=str(tiny_data), config_path=str(fast_config), ablations=["shuffled-labels"]
    )
    assert (worse.version, worse.alias) == ("2", "challenger")
    assert worse.reason.startswith("worse than champion v1")
    assert "same trusted evaluation set" in worse.reason
    assert registry.current_alias_version(registry.MODEL_NAME, "champion") == "1"
    assert registry.current_alias_version(registry.MODEL_NAME, "challenger") == "2"
    run = registry.client().get_run(worse.run_id)
    assert run.data.metrics["gate_champion_quality"] > run.data.metrics["gate_quality"]
    assert run.data.tags[registry.TAG_GATE_REASON] == worse.reason


def test_a_failing_stage_leaves_the_registry_unchanged(
    first_run, store: str, tiny_data: Path, tmp_path: Path
) -> None:
    from flows.training import train_flow
    from mixllm.core.config import MixLLMConfig

    broken = tmp_path / "broken.yaml"
    # The tagging stage loads the encoder: a missing model directory fails it mid-pipeline.
    MixLLMConfig.model_validate({"encoder": {"model_path": str(tmp_path / "no-model")}}).to_yaml(
        broken
    )
    before = snapshot()
    with pytest.raises(Exception, match="no-model"):
        train_flow(data=str(tiny_data), config_path=str(broken))
    assert snapshot() == before


def test_champion_loads_and_routes_in_a_fresh_process(first_run, store: str) -> None:
    code = """
import json, sys
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model("models:/mixllm-router@champion")
out = model.predict(pd.DataFrame({"query": sys.argv[1:3], "budget_pct": [None, 200.0]}))
print(json.dumps(out.to_dict("records")))
"""
    queries = [
        "Write a python function to merge a list of integers.",
        "Which statement best describes the force involved when a ball rolls uphill?",
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    proc = subprocess.run(
        [sys.executable, "-c", code, *queries],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(rows) == 2
    assert rows[0]["llm"] == SPECIALISTS["mbpp"]
    candidates = json.loads(rows[0]["candidates"])
    assert {c["llm"] for c in candidates} == set(LLMS)
    assert all(0 <= c["quality"] <= 1 and c["cost"] > 0 for c in candidates)
    assert rows[1]["budget_usd"] > rows[0]["budget_usd"]


def test_retrain_on_feedback_registers_and_advances_the_watermark(
    first_run, store: str, tiny_data: Path, fast_config: Path, tmp_path: Path
) -> None:
    from flows.training import retrain_flow
    from mixllm.registry.feedback import FeedbackStore

    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    feedback = FeedbackStore(url)
    for i in range(6):
        request_id = f"req-{i}"
        feedback.log_decision(
            request_id=request_id,
            query=f"Write a python function to invert a dictionary number {i}.",
            tags=[],
            llm=SPECIALISTS["mbpp"],
            router_version="1",
            budget_usd=None,
            budget_pct=25.0,
            candidates=[],
        )
        feedback.add_feedback(request_id, quality=1.0, cost=None, latency_s=0.8)
    feedback.close()
    before = snapshot()
    # Default gate settings: honest feedback on new queries must not block a retrain.
    result = retrain_flow(data=str(tiny_data), feedback_url=url, config_path=str(fast_config))
    assert result is not None and result.feedback_rows == 6
    assert result.alias == "champion", result.reason
    assert result.version not in before["versions"]
    assert registry.feedback_watermark() == "6"  # the largest feedback id, not a time
    run = registry.client().get_run(result.run_id)
    assert run.data.params["flow.feedback_rows"] == "6"
    # Nothing new since the watermark: no training, no new version.
    after = snapshot()
    assert retrain_flow(data=str(tiny_data), feedback_url=url, config_path=str(fast_config)) is None
    assert snapshot() == after


def test_retraining_deployment_has_the_cron_schedule(prefect_api: str) -> None:
    import asyncio

    from flows.training import retraining_deployment

    deployment = retraining_deployment(name="test-retrain", cron="0 3 * * *", data="/x.csv")
    deployment_id = deployment.apply()

    async def read() -> object:
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            return await client.read_deployment(deployment_id)

    stored = asyncio.run(read())
    assert stored.parameters == {"data": "/x.csv"}
    assert [s.schedule.cron for s in stored.schedules] == ["0 3 * * *"]
