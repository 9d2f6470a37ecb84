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
import socket
from typing import Any
from urllib.parse import urlparse

from prefect.task_runners import ThreadPoolTaskRunner

from mixllm.core.errors import ConfigError

ADDRESS_ENV = "MIXLLM_DASK_ADDRESS"
WORKERS_ENV = "MIXLLM_DASK_WORKERS"


def dask_env(address: str | None, workers: int | None) -> dict[str, str]:
    """The environment that selects a Dask task runner (empty: the default runner)."""
    if address:
        return {ADDRESS_ENV: address}
    if workers:
        return {WORKERS_ENV: str(workers)}
    return {}


SCHEMES = ("tcp", "tls")


def check_dask_address(address: str) -> tuple[str, int]:
    """(host, port) of a scheduler address ``tcp://host:port`` or ``tls://host:port``;
    ConfigError naming the expected form otherwise."""
    parsed = urlparse(address)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme not in SCHEMES or not parsed.hostname or port is None or parsed.path:
        raise ConfigError(f"{address!r} is not a Dask scheduler address (tcp://host:port)")
    return parsed.hostname, port


def check_scheduler_reachable(address: str, timeout: float = 3.0) -> None:
    """ConfigError unless the scheduler at ``address`` accepts a TCP connection within
    ``timeout`` seconds (Dask itself retries for 30 s, then fails in every task)."""
    host, port = check_dask_address(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def dask_workers(env: dict[str, str]) -> int:
    """The LocalCluster size ``MIXLLM_DASK_WORKERS`` asks for (0: none); ConfigError if
    it is not a whole number."""
    raw = env.get(WORKERS_ENV, "").strip() or "0"
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{WORKERS_ENV}={raw!r} is not a number of workers") from None


def check_dask_env(env: dict[str, str] | None = None) -> None:
    """ConfigError unless the Dask settings of ``env`` (default: os.environ) are usable:
    a well-formed, reachable scheduler address, a whole number of workers."""
    env = dict(os.environ if env is None else env)
    address = env.get(ADDRESS_ENV, "").strip()
    if address:
        check_scheduler_reachable(address)
    dask_workers(env)


def chosen_runner(env: dict[str, str] | None = None) -> Any:
    """A fresh task runner as ``env`` (default: os.environ) selects it."""
    env = dict(os.environ if env is None else env)
    address = env.get(ADDRESS_ENV, "").strip()
    workers = dask_workers(env)
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
