"""`mixllm pipeline`, `mixllm ui` and `mixllm schedule`: the training pipeline's commands.

prefect and mlflow are imported inside the commands, after the embedded-store defaults are
in the environment (Prefect reads its settings when it is imported).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from mixllm.core.paths import project_dir as project_root

DEFAULT_CRON = "0 3 * * *"
DEPLOYMENT_NAME = "mixllm-retrain"
SERVER_HINT = (
    "start one with `prefect server start --host 127.0.0.1` and "
    "`export PREFECT_API_URL=http://127.0.0.1:4200/api`"
)


def store_defaults() -> None:
    """Embedded stores under the project unless the environment names others."""
    root = project_root()
    defaults = {
        "PREFECT_HOME": str(root / ".prefect"),
        # A cold ephemeral Prefect server (fresh home, 2 cores) needs more than the 20 s default.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


def use_dask(address: str | None, workers: int | None) -> None:
    """Select the Dask task runner for the flow runs of this process (see
    ``flows.task_runners``); nothing given: keep what the environment says."""
    from flows.task_runners import dask_env

    os.environ.update(dask_env(address, workers))


def ui_address(uri: str, port: int = 5000) -> str:
    """Where to look at the registered model in the MLflow UI."""
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/models/mixllm-router"
    return f"http://127.0.0.1:{port}/#/models/mixllm-router (start it with `mixllm ui`)"


def pipeline(
    data: Annotated[str | None, typer.Option(help="Data file, directory or hf:// URL.")] = None,
    budget_pct: Annotated[
        float | None, typer.Option(help="Budget, % of the reference LLM's cost per query.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="MixLLM config YAML.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of splits and models.")] = None,
    ablation: Annotated[
        list[str] | None, typer.Option(help="Ablation to apply (repeatable).")
    ] = None,
    dask: Annotated[bool, typer.Option(help="Run the heavy tasks on a Dask LocalCluster.")] = False,
    dask_workers: Annotated[
        int, typer.Option(min=1, help="Worker processes of the --dask LocalCluster.")
    ] = 2,
    dask_address: Annotated[
        str | None, typer.Option(help="Run the heavy tasks on this Dask scheduler (tcp://...).")
    ] = None,
) -> None:
    """Run the training flow once: train, evaluate, register and gate a new router version."""
    store_defaults()
    use_dask(dask_address, dask_workers if dask else None)
    from flows.task_runners import check_dask_env
    from mixllm.core.errors import ConfigError, MixLLMError

    try:
        check_dask_env()  # before the flow: an unreachable scheduler fails every task after 30 s
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    from flows.training import train_flow

    try:
        result = train_flow(
            data=data,
            budget_pct=budget_pct,
            seed=seed,
            ablations=list(ablation or []),
            config_path=str(config) if config else None,
        )
    except MixLLMError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(result.evaluation_markdown)
    typer.echo(f"Registered {result.model_name} version {result.version} as @{result.alias}")
    typer.echo(f"Gate: {result.reason}")
    typer.echo("Stage timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
    typer.echo(f"Tracking store: {result.tracking_uri}")
    typer.echo(f"MLflow UI: {ui_address(result.tracking_uri)}")
    typer.echo("Serve the champion: .venv/bin/mixllm serve --port 3000  (see docs/SERVICE.md)")


def ui(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Start the MLflow UI on 127.0.0.1 over the project's tracking store."""
    store_defaults()
    from mixllm.registry import stores as registry

    uri = registry.configure()
    if uri.startswith(("http://", "https://")):
        typer.echo(f"The tracking store is already an MLflow server: open {uri}")
        return
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        uri,
    ]
    root = registry.artifact_location(uri)
    if root:
        cmd += ["--default-artifact-root", root]
    typer.echo(f"MLflow UI on http://127.0.0.1:{port} over {uri} (Ctrl-C stops it)")
    from flows.processes import run_foreground

    # SIGTERM or Ctrl-C stops the UI's whole process group (its gunicorn/uvicorn workers).
    raise typer.Exit(run_foreground(cmd))


def schedule(
    cron: Annotated[str, typer.Option(help="Cron expression of the retraining.")] = DEFAULT_CRON,
    data: Annotated[str | None, typer.Option(help="Base training data.")] = None,
    config: Annotated[Path | None, typer.Option(help="MixLLM config YAML.")] = None,
    feedback_url: Annotated[
        str | None, typer.Option(help="Feedback store URL (default: the service's).")
    ] = None,
    feedback_window: Annotated[
        int | None,
        typer.Option(min=1, help="Train on the newest N feedback rows only (default: all)."),
    ] = None,
    name: Annotated[str, typer.Option(help="Deployment name.")] = DEPLOYMENT_NAME,
) -> None:
    """Serve the retraining flow on a cron schedule (needs a Prefect server: PREFECT_API_URL)."""
    store_defaults()
    from flows.cli_checks import check_no_password

    check_no_password("--feedback-url", feedback_url, "MIXLLM_FEEDBACK_URL")
    if not os.environ.get("PREFECT_API_URL"):
        typer.echo(f"error: schedules need a Prefect server; {SERVER_HINT}", err=True)
        raise typer.Exit(2)
    from flows.training import serve_retraining

    serve_retraining(
        name=name,
        cron=cron,
        data=data,
        config_path=str(config) if config else None,
        feedback_url=feedback_url,
        feedback_window=feedback_window,
    )


def deploy_retraining(
    pool: Annotated[str, typer.Option(help="Prefect work pool (process type) to run on.")],
    cron: Annotated[
        str, typer.Option(help='Cron schedule; "" for runs on demand only.')
    ] = DEFAULT_CRON,
    data: Annotated[str | None, typer.Option(help="Base training data.")] = None,
    config: Annotated[Path | None, typer.Option(help="MixLLM config YAML.")] = None,
    feedback_url: Annotated[
        str | None, typer.Option(help="Feedback store URL (default: the service's).")
    ] = None,
    source: Annotated[
        Path | None, typer.Option(help="Checkout the workers load the flow from.")
    ] = None,
    dask_address: Annotated[
        str | None, typer.Option(help="Run the heavy tasks on this Dask scheduler.")
    ] = None,
    dask_workers: Annotated[
        int | None, typer.Option(min=1, help="Run them on a LocalCluster of N workers.")
    ] = None,
    name: Annotated[str, typer.Option(help="Deployment name.")] = DEPLOYMENT_NAME,
) -> None:
    """Register the retraining flow as a deployment of a work pool (needs a Prefect server);
    a worker started with `prefect worker start --pool POOL` runs its flow runs."""
    store_defaults()
    from flows import cli_checks as check
    from flows.deployment import ENTRYPOINT

    check.check_no_password("--feedback-url", feedback_url, "MIXLLM_FEEDBACK_URL")
    check.check_cron(cron)
    check.check_source(source, ENTRYPOINT)
    check.check_data(data)
    check.check_config(config)
    check.check_dask(dask_address)
    if not os.environ.get("PREFECT_API_URL"):
        typer.echo(f"error: deployments need a Prefect server; {SERVER_HINT}", err=True)
        raise typer.Exit(2)
    from flows.deployment import deploy_retraining as deploy
    from flows.deployment import work_pool_exists

    if not work_pool_exists(pool):
        check.fail(
            "--pool",
            f"no work pool {pool!r} on the Prefect server; create it with "
            f"`prefect work-pool create {pool} --type process`",
        )

    parameters = {
        "data": data,
        "config_path": str(config) if config else None,
        "feedback_url": feedback_url,
    }
    deployment_id = deploy(
        pool,
        name=name,
        cron=cron or None,
        parameters=parameters,
        source=source,
        dask_address=dask_address,
        dask_workers=dask_workers,
    )
    typer.echo(f"Deployment mixllm-retrain/{name} ({deployment_id}) on work pool {pool}")
    typer.echo(f"Start a worker: prefect worker start --pool {pool}")


def benchmark_pipeline(
    data: Annotated[str | None, typer.Option(help="Data file, directory or hf:// URL.")] = None,
    out: Annotated[Path, typer.Option(help="Markdown report to update.")] = Path(
        "docs/BENCHMARKS.md"
    ),
) -> None:
    """Time the whole training flow cold (empty caches, new store) and warm; report it."""
    import tempfile
    from datetime import UTC, datetime

    with tempfile.TemporaryDirectory(prefix="mixllm-bench-") as tmp:
        # a private store and cache: "cold" really starts from nothing
        os.environ.update(
            {
                "MIXLLM_HOME": f"{tmp}/home",
                "MIXLLM_ARTIFACT_ROOT": f"{tmp}/artifacts",
                "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
            }
        )
        store_defaults()
        from flows.training import train_flow

        runs = []
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            result = train_flow(data=data)
            runs.append((label, time.perf_counter() - t0, result))
    section = pipeline_section(runs, datetime.now(UTC))
    from mixllm.tools.sections import upsert_section

    upsert_section(out, "pipeline", section)
    typer.echo(section)


def pipeline_section(runs: list, when) -> str:
    """Markdown of per-stage timings of the cold and warm flow runs, with the targets."""
    stages = list(dict.fromkeys(k for _, _, r in runs for k in r.timings))
    targets = {"cold": 300.0, "warm": 60.0}
    lines = [
        "## Pipeline (training flow end to end)",
        "",
        f"`mixllm benchmark-pipeline` on {when:%Y-%m-%d %H:%M} UTC: the Prefect training flow "
        "on the default data, first with empty embedding/encoder caches and a new MLflow "
        "store (cold), then again (warm). Wall time includes Prefect's ephemeral server.",
        "",
        "| run | " + " | ".join(stages) + " | wall s | target | met |",
        "|---|" + "---:|" * (len(stages) + 2) + "---|",
    ]
    for label, wall, result in runs:
        cells = " | ".join(f"{result.timings.get(s, 0.0):.1f}" for s in stages)
        met = "yes" if wall <= targets[label] else "NO"
        lines.append(f"| {label} | {cells} | {wall:.1f} | <= {targets[label]:.0f} s | {met} |")
    last = runs[-1][2]
    lines += [
        "",
        f"Registered versions: {', '.join(f'v{r.version} @{r.alias}' for *_, r in runs)};"
        f" gate: {last.reason}",
    ]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to the `mixllm` app."""
    app.command("pipeline")(pipeline)
    app.command("benchmark-pipeline")(benchmark_pipeline)
    app.command("ui")(ui)
    app.command("schedule")(schedule)
    app.command("deploy-retraining")(deploy_retraining)
