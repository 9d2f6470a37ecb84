"""The training flow's heavy tasks on Dask: a LocalCluster with 2 worker processes gives the
same registered model as the default (thread) task runner, with the per-LLM predictor fits
and the per-router evaluations spread over both workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from flows.task_runners import ADDRESS_ENV, WORKERS_ENV, chosen_runner, dask_env
from mixllm.registry import stores as registry
from tests.stores import patched_env

pytestmark = [pytest.mark.flow, pytest.mark.slow, pytest.mark.timeout(600)]

# Dask names a task by the function Prefect submits (one prefix per task of the flow).
FIT, FOLD, EVALUATE = "fit_llm_task", "fit_fold_task", "evaluate_router_task"
HEAVY = {"tag_task", "embed_task", FIT, FOLD, "evaluation_inputs_task", EVALUATE}


def test_the_environment_picks_the_runner() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    default = chosen_runner({})
    assert type(default) is ThreadPoolTaskRunner
    assert default._max_workers == 1  # one task at a time: CPU-bound tasks contend in threads
    local = chosen_runner(dask_env(None, 2))
    assert isinstance(local, DaskTaskRunner)
    assert local.cluster_kwargs["n_workers"] == 2
    assert local.cluster_kwargs["threads_per_worker"] == 1
    remote = chosen_runner({ADDRESS_ENV: "tcp://127.0.0.1:8786", WORKERS_ENV: "2"})
    assert remote.address == "tcp://127.0.0.1:8786"


@pytest.fixture(scope="module")
def cluster(session_env: Path) -> Iterator[object]:
    """A LocalCluster of 2 single-threaded worker processes (they inherit this environment)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as c,
        Client(c) as client,
    ):
        yield client


def predictions(version: str, queries) -> np.ndarray:
    router, _ = registry.load_version(registry.MODEL_NAME, version)
    pred = router.predict(queries)
    return np.column_stack([pred.quality, pred.cost])


def test_dask_local_cluster_registers_the_same_model(
    mlflow_store: str, prefect_api: str, tiny_data: Path, fast_config: Path, cluster
) -> None:
    from dask.utils import key_split
    from distributed import get_task_stream

    from flows.training import train_flow
    from mixllm.data.loaders import load_data

    args = {"data": str(tiny_data), "config_path": str(fast_config)}
    plain = train_flow(**args)
    with patched_env(dask_env(cluster.scheduler.address, None)), get_task_stream(cluster) as ts:
        on_dask = train_flow(**args)
    workers: dict[str, list[str]] = {}
    for t in ts.data:
        workers.setdefault(key_split(t["key"]), []).append(t["worker"])
    assert set(workers) >= HEAVY, workers  # every heavy stage ran on the cluster's workers
    # one task per LLM (4) for the predictors and the refit, one per cross-fitting fold (5 in
    # the fast config); one per evaluated router (9 baselines, 4 single LLMs, mlp_prompt,
    # MixLLM); the per-LLM and per-router fan-outs used both workers
    assert len(workers[FIT]) == 2 * 4 and len(workers[FOLD]) == 5, workers
    assert len(workers[EVALUATE]) >= 12, workers
    assert len(set(workers[FIT])) == len(set(workers[EVALUATE])) == 2, workers

    c = registry.client()
    tags = [c.get_run(r.run_id).data.tags for r in (plain, on_dask)]
    assert tags[0][registry.TAG_DATA_FINGERPRINT] == tags[1][registry.TAG_DATA_FINGERPRINT]
    queries = load_data(str(tiny_data)).queries
    np.testing.assert_allclose(
        predictions(plain.version, queries), predictions(on_dask.version, queries), rtol=1e-9
    )
    assert plain.evaluation_markdown == on_dask.evaluation_markdown
