"""The retraining flow as a Prefect deployment on a work pool, the way deployments run in
production: a Prefect server holds the deployment and its cron schedule, a worker polling
the pool runs each flow run in a process of its own.

    prefect work-pool create mixllm --type process
    mixllm deploy-retraining --pool mixllm --cron "0 3 * * *"
    prefect worker start --pool mixllm

The code is pulled from a directory (``source``, default: this checkout) that every worker
of the pool can read; no image is built. `mixllm schedule` (``flow.serve``) stays the
single-process option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.task_runners import dask_env

ENTRYPOINT = "flows/training.py:retrain_flow"
DEPLOYMENT_NAME = "mixllm-retrain"  # the service's default: "mixllm-retrain/mixllm-retrain"
DEFAULT_CRON = "0 3 * * *"


def project_source() -> Path:
    """The checkout that holds ``flows/`` (where the workers load the flow from)."""
    return Path(__file__).resolve().parent.parent


def deploy_retraining(
    pool: str,
    *,
    name: str = DEPLOYMENT_NAME,
    cron: str | None = DEFAULT_CRON,
    parameters: dict[str, Any] | None = None,
    source: str | Path | None = None,
    env: dict[str, str] | None = None,
    dask_address: str | None = None,
    dask_workers: int | None = None,
) -> str:
    """Register ``retrain_flow`` as deployment ``name`` on work pool ``pool`` (cron: None
    for runs on demand only, e.g. by the service's feedback trigger); its id.

    ``env`` is set in every flow run's process (on top of the worker's environment), with
    the Dask task runner selected by ``dask_address`` / ``dask_workers``.
    """
    from prefect import flow

    remote = flow.from_source(source=str(source or project_source()), entrypoint=ENTRYPOINT)
    run_env = {**(env or {}), **dask_env(dask_address, dask_workers)}
    deployment_id = remote.deploy(
        name=name,
        work_pool_name=pool,
        cron=cron,
        parameters={k: v for k, v in (parameters or {}).items() if v is not None},
        job_variables={"env": run_env} if run_env else None,
        description="Retrain the MixLLM router on base data + new feedback, gate and register.",
        tags=["mixllm"],
        build=False,
        push=False,
        print_next_steps=False,
    )
    return str(deployment_id)


def work_pool_exists(pool: str) -> bool:
    """True if the Prefect server (PREFECT_API_URL) has a work pool named ``pool``."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            return False
    return True
