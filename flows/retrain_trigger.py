"""The service's retraining trigger over Prefect: start a run of the retraining deployment
(``RetrainTrigger``'s callable) and tell whether it is still going. No BentoML here, so the
orchestration tests and tools use exactly what the service uses."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

PREFECT_TIMEOUT_S = 10.0  # the longest a trigger waits on the Prefect API, per call


def _prefect_api() -> str:
    """$PREFECT_API_URL once it answers its health check within PREFECT_TIMEOUT_S / 2."""
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        # Without a server Prefect would boot an ephemeral one inside this process,
        # which holds no deployment: say what is missing instead.
        raise RuntimeError("no Prefect server configured (set PREFECT_API_URL)")
    import httpx

    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=PREFECT_TIMEOUT_S / 2).raise_for_status()
    except httpx.HTTPError as exc:
        raise RuntimeError(f"the Prefect API does not answer ({type(exc).__name__})") from None
    return url


def _bounded_prefect() -> Any:
    """Prefect settings under which one API call gives up after PREFECT_TIMEOUT_S."""
    from prefect.settings import PREFECT_API_REQUEST_TIMEOUT, temporary_settings

    return temporary_settings({PREFECT_API_REQUEST_TIMEOUT: PREFECT_TIMEOUT_S})


def prefect_trigger(deployment: str) -> Callable[[dict[str, Any]], str]:
    """Start a run of a Prefect deployment without waiting for it; returns the run id.
    Never waits minutes: the API is probed first and every call is time-bounded."""

    def trigger(parameters: dict[str, Any]) -> str:
        _prefect_api()
        from prefect.deployments import run_deployment

        with _bounded_prefect():
            run = run_deployment(
                deployment, parameters=_public(parameters), timeout=0, as_subflow=False
            )
        return str(run.id)

    return trigger


def prefect_run_active(run_id: str) -> bool:
    """True while a flow run is not in a final state (pending, scheduled, running)."""
    _prefect_api()
    from prefect import get_client

    with _bounded_prefect(), get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    return state is None or not state.is_final()


def _public(parameters: dict[str, Any]) -> dict[str, Any]:
    """Flow parameters fit for Prefect's database: a URL with a password stays out."""
    url = parameters.get("feedback_url")
    if url and urlparse(str(url)).password:
        return {k: v for k, v in parameters.items() if k != "feedback_url"}
    return parameters
