"""Checks of command-line options before any work starts: a bad option is one
``error: --option: problem`` line and exit code 2, never a traceback minutes later."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import typer

from mixllm.core.errors import ConfigError


def fail(option: str, problem: str) -> None:
    """Print ``error: OPTION: PROBLEM`` to stderr and exit 2 (a usage error)."""
    typer.echo(f"error: {option}: {problem}", err=True)
    raise typer.Exit(2)


def check_cron(cron: str) -> None:
    """Exit 2 unless ``cron`` is a cron expression Prefect accepts ("" = no schedule)."""
    if not cron:
        return
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=cron)
    except ValidationError:
        fail("--cron", f'{cron!r} is not a cron expression (e.g. "0 3 * * *")')


def check_source(source: Path | None, entrypoint: str) -> None:
    """Exit 2 unless ``source`` is a directory holding the flow's entrypoint file."""
    if source is None:
        return
    if not source.is_dir():
        fail("--source", f"{source} is not a directory")
    if not (source / entrypoint.split(":")[0]).is_file():
        fail("--source", f"{source} has no {entrypoint.split(':')[0]} (not a MixLLM checkout)")


def check_data(data: str | None) -> None:
    """Exit 2 if ``data`` names a local path that does not exist (URLs are checked on use)."""
    if data and "://" not in data and not Path(data).exists():
        fail("--data", f"{data} does not exist")


def check_config(config: Path | None) -> None:
    """Exit 2 unless ``config`` is a readable, valid MixLLM config YAML."""
    if config is None:
        return
    from mixllm.core.config import MixLLMConfig

    if not config.is_file():
        fail("--config", f"{config} does not exist")
    try:
        MixLLMConfig.from_yaml(config)
    except (ConfigError, OSError, ValueError) as exc:
        fail("--config", f"{config}: {exc}")


def check_no_password(option: str, url: str | None, env_name: str) -> None:
    """Exit 2 if ``url`` carries a password: it would be stored in clear by Prefect."""
    if url and urlparse(url).password:
        fail(
            option,
            "the URL holds a password, which Prefect would store in clear; "
            f"set {env_name} in the worker's environment instead",
        )


def check_dask(address: str | None, reach: bool = False) -> None:
    """Exit 2 unless the Dask scheduler address is well formed (and, with ``reach``,
    the scheduler accepts a connection)."""
    from flows.task_runners import check_dask_address, check_scheduler_reachable

    if not address:
        return
    try:
        check_dask_address(address)
        if reach:
            check_scheduler_reachable(address)
    except ConfigError as exc:
        fail("--dask-address", str(exc))
