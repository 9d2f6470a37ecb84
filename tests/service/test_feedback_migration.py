"""A feedback store created by the previous schema (no one-per-request rule, triggers keyed by
time) upgrades in place on SQLite and PostgreSQL and keeps every accepted row."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from mixllm.core.errors import DuplicateFeedbackError
from mixllm.registry.feedback import FeedbackStore
from mixllm.registry.feedback_schema import LATEST, schema_version
from tests.stores import postgres_database

pytestmark = [pytest.mark.service, pytest.mark.timeout(300)]

T0 = datetime(2026, 1, 1, 12, 0, 0)


def legacy_tables() -> sa.MetaData:
    """The tables exactly as the store before schema 1 created them."""
    md = sa.MetaData()
    sa.Table(
        "decisions",
        md,
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime, index=True),
        sa.Column("query", sa.Text),
        sa.Column("tags", sa.JSON),
        sa.Column("llm", sa.String(200)),
        sa.Column("router_version", sa.String(64)),
        sa.Column("budget_usd", sa.Float),
        sa.Column("budget_pct", sa.Float),
        sa.Column("candidates", sa.JSON),
        sa.Column("decision_ms", sa.Float),
    )
    sa.Table(
        "feedback",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), sa.ForeignKey("decisions.request_id"), index=True),
        sa.Column("created_at", sa.DateTime, index=True),
        sa.Column("quality", sa.Float),
        sa.Column("thumbs_up", sa.Boolean),
        sa.Column("cost", sa.Float),
        sa.Column("latency_s", sa.Float),
    )
    sa.Table(
        "retrain_triggers",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime, index=True),
        sa.Column("slot", sa.Integer, unique=True),
        sa.Column("since", sa.DateTime),
        sa.Column("feedback_count", sa.Integer),
        sa.Column("flow_run_id", sa.String(64)),
        sa.Column("error", sa.Text),
    )
    return md


def fill_legacy(url: str) -> None:
    """Two requests, the first with three feedback rows (allowed then), and one trigger."""
    engine = sa.create_engine(url)
    md = legacy_tables()
    md.create_all(engine)
    decisions, feedback, triggers = (md.tables[t] for t in md.tables)
    with engine.begin() as conn:
        for rid in ("r1", "r2"):
            conn.execute(
                decisions.insert().values(
                    request_id=rid, created_at=T0, query=f"query {rid}", llm="a", tags=[]
                )
            )
        for quality in (0.0, 0.5, 1.0):
            conn.execute(feedback.insert().values(request_id="r1", created_at=T0, quality=quality))
        conn.execute(feedback.insert().values(request_id="r2", created_at=T0, thumbs_up=True))
        conn.execute(triggers.insert().values(created_at=T0, slot=1, since=T0, feedback_count=4))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def legacy_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A legacy store on a fresh SQLite file or a brand-new PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'legacy.db'}"
        fill_legacy(url)
        yield url
        return
    with postgres_database("mixllm_migrate") as url:
        fill_legacy(url)
        yield url


def test_legacy_store_upgrades_and_keeps_every_row(legacy_url: str) -> None:
    store = FeedbackStore(legacy_url)
    try:
        assert schema_version(store.engine) == LATEST
        kept = store.feedback_since()
        assert kept["quality"].tolist() == [0.0, 1.0]  # the first feedback of each request
        with store.engine.connect() as conn:
            moved = conn.execute(
                sa.text("SELECT id, request_id, quality FROM feedback_superseded ORDER BY id")
            ).all()
            trigger = conn.execute(
                sa.text("SELECT feedback_count, feedback_max_id FROM retrain_triggers")
            ).one()
        assert [(r.request_id, r.quality) for r in moved] == [("r1", 0.5), ("r1", 1.0)]
        assert len(kept) + len(moved) == 4  # nothing lost
        assert tuple(trigger) == (4, None)
        with pytest.raises(DuplicateFeedbackError):
            store.add_feedback("r2", quality=0.3)
    finally:
        store.close()


def test_upgrading_twice_and_concurrently_is_harmless(legacy_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:  # four workers opening the legacy store at once
        stores = list(pool.map(lambda _: FeedbackStore(legacy_url), range(4)))
    stores.append(FeedbackStore(legacy_url))  # and once more when it is up to date
    try:
        assert {schema_version(s.engine) for s in stores} == {LATEST}
        assert stores[-1].count_feedback() == 2
    finally:
        for s in stores:
            s.close()


def test_workers_creating_a_new_store_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: FeedbackStore(url), range(4)))
    try:
        assert {schema_version(s.engine) for s in stores} == {LATEST}
    finally:
        for s in stores:
            s.close()
