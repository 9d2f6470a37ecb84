"""Where the pipeline's heavy tasks run: threads in the flow's process (the default), a Dask
LocalCluster, or an existing Dask scheduler.

The choice is read from the environment when a flow run starts (not when the flow is
defined), so `mixllm pipeline --dask`, a work pool's job variables and `flow.serve` all pick
it the same way:

- ``MIXLLM_DASK_ADDRESS=tcp://host:8786``: the tasks go to that scheduler's workers;
- ``MIXLLM_DASK_WORKERS=N`` (N >= 1): a LocalCluster of N single-threaded worker processes,
  started for the flow run and stopped after it;
- neither: Prefect's ThreadPoolTaskRunner with ONE thread: the tasks run one at a time in
  the flow's process, as ``Training.fit`` would run them.

One thread, as before the per-LLM and per-router fan-out: the heavy tasks are CPU-bound
numpy/BLAS/scikit-learn/torch/LightGBM work that threads of one process do not spread
over cores (LightGBM already uses ``predictor.threads``), several BLAS callers at once
oversubscribe the cores, and ``warnings.catch_warnings`` (the baselines' quiet fits) is not
thread-safe. Side by side, the fan-out runs on Dask's worker processes.
"""

from __future__ import annotations

import os
from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

ADDRESS_ENV = "MIXLLM_DASK_ADDRESS"
WORKERS_ENV = "MIXLLM_DASK_WORKERS"


def dask_env(address: str | None, workers: int | None) -> dict[str, str]:
    """The environment that selects a Dask task runner (empty: the default runner)."""
    if address:
        return {ADDRESS_ENV: address}
    if workers:
        return {WORKERS_ENV: str(workers)}
    return {}


def chosen_runner(env: dict[str, str] | None = None) -> Any:
    """A fresh task runner as ``env`` (default: os.environ) selects it."""
    env = dict(os.environ if env is None else env)
    address = env.get(ADDRESS_ENV, "").strip()
    workers = int(env.get(WORKERS_ENV, "0") or 0)
    if not address and workers <= 0:
        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    # One thread per worker: LightGBM and torch are told to use 1 thread in the fast config,
    # and processes (not threads) are what spreads the GIL-bound parts across cores.
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        },
    )


class EnvTaskRunner(ThreadPoolTaskRunner):
    """The flows' task runner: each flow run gets the runner the environment names then.

    Prefect enters ``flow.task_runner.duplicate()`` for every flow run, so choosing in
    ``duplicate`` makes the choice per run without fixing it when the module is imported.
    """

    def duplicate(self) -> Any:
        """The runner for one flow run (see the module docstring)."""
        return chosen_runner()
