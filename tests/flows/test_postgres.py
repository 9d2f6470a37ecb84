"""The same flow with MLflow's backend store on PostgreSQL (a fresh database per run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixllm.registry import stores as registry
from tests.tiny_data import SPECIALISTS

pytestmark = [pytest.mark.flow, pytest.mark.postgres, pytest.mark.slow]


def test_flow_registers_champion_in_postgres(
    postgres_store: str, prefect_api: str, tiny_data: Path, fast_config: Path
) -> None:
    import sqlalchemy

    from flows.training import train_flow

    result = train_flow(data=str(tiny_data), config_path=str(fast_config))
    assert (result.version, result.alias) == ("1", "champion")
    assert result.tracking_uri == postgres_store
    # The registry really lives in PostgreSQL, not in some SQLite default.
    engine = sqlalchemy.create_engine(postgres_store, poolclass=sqlalchemy.NullPool)
    with engine.connect() as conn:
        aliases = conn.execute(
            sqlalchemy.text("SELECT alias, version FROM registered_model_aliases WHERE name = :n"),
            {"n": registry.MODEL_NAME},
        ).all()
    engine.dispose()
    assert [(a, str(v)) for a, v in aliases] == [("champion", "1")]
    router, version = registry.load_champion()
    assert version == "1"
    decision = router.route("Write a python function to rotate a tuple of words.")
    assert decision.llm == SPECIALISTS["mbpp"]
