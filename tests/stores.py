"""Isolated environments and real stores for the tests: environment variables set for a
block, MLflow on a fresh SQLite file, a brand-new PostgreSQL database."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("MIXLLM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def patched_env(values: Mapping[str, str], unset: Iterable[str] = ()) -> Iterator[None]:
    """Set ``values`` (and remove ``unset``) in os.environ for the block."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in values.items():
            mp.setenv(key, value)
        for key in unset:
            mp.delenv(key, raising=False)
        yield


@contextmanager
def mlflow_sqlite(folder: Path) -> Iterator[str]:
    """MLflow tracking + registry on ``folder``/mlflow.db, artifacts beside it; its URI."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with patched_env(
        {"MLFLOW_TRACKING_URI": uri, "MIXLLM_ARTIFACT_ROOT": str(folder / "artifacts")}
    ):
        yield uri


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A brand-new PostgreSQL database for the block (its URL), dropped afterwards."""
    import sqlalchemy

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not usable: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        # WITH (FORCE) closes the connections a client's engine still pools.
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
