"""Tables of the feedback database, its engine, and the upgrade path of stores created by
older versions.

A new database gets every table in its latest form (``create_all``). An existing one is
upgraded in place by the numbered steps of ``MIGRATIONS``, run in order from the version
recorded in ``mixllm_schema``; every step is idempotent (several service workers may open
the same store at once) and keeps every accepted feedback row. See docs/PIPELINE.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SQLITE_BUSY_TIMEOUT_MS = 30_000


class Base(DeclarativeBase):
    """Declarative base of the feedback database's tables."""


class DecisionRow(Base):
    """One routed request and the decision taken for it."""

    __tablename__ = "decisions"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    query: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    llm: Mapped[str] = mapped_column(String(200))
    router_version: Mapped[str | None] = mapped_column(String(64))
    budget_usd: Mapped[float | None] = mapped_column(Float)
    budget_pct: Mapped[float | None] = mapped_column(Float)
    candidates: Mapped[list[Any]] = mapped_column(JSON, default=list)
    decision_ms: Mapped[float | None] = mapped_column(Float)


class FeedbackRow(Base):
    """The feedback on a routed request: one per request (unique ``request_id``).

    ``id`` grows with every insert and is the key retraining reads by: a training run
    records the largest id it saw, never a wall-clock instant.
    """

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("decisions.request_id"), index=True, unique=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    quality: Mapped[float | None] = mapped_column(Float)
    thumbs_up: Mapped[bool | None]
    cost: Mapped[float | None] = mapped_column(Float)
    latency_s: Mapped[float | None] = mapped_column(Float)


class SupersededFeedbackRow(Base):
    """Repeated feedback found when a store from before the one-per-request rule was upgraded:
    moved here (same id and values) instead of deleted, so no accepted row is ever lost."""

    __tablename__ = "feedback_superseded"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    quality: Mapped[float | None] = mapped_column(Float)
    thumbs_up: Mapped[bool | None]
    cost: Mapped[float | None] = mapped_column(Float)
    latency_s: Mapped[float | None] = mapped_column(Float)


class RetrainTriggerRow(Base):
    """A retraining run the service started, so workers do not start the same one twice."""

    __tablename__ = "retrain_triggers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    slot: Mapped[int] = mapped_column(Integer, unique=True)
    since: Mapped[datetime | None] = mapped_column(DateTime)  # before schema 2; kept for history
    feedback_count: Mapped[int] = mapped_column(Integer)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    # The largest feedback id when the trigger fired: the next one counts feedback after it.
    feedback_max_id: Mapped[int | None] = mapped_column(Integer)


class SchemaRow(Base):
    """One row per upgrade step applied to this database."""

    __tablename__ = "mixllm_schema"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    applied_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())


def make_engine(url: str, synchronous: str = "FULL") -> Engine:
    """An engine; SQLite gets WAL, a busy timeout, foreign keys and ``synchronous`` (FULL:
    fsync per commit; NORMAL: a commit survives a crash of the process, not of the machine)
    on every connection."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, future=True)
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )
    event.listen(engine, "connect", lambda conn, rec: _sqlite_pragmas(conn, rec, synchronous))
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, synchronous: str = "FULL") -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers and one writer work at once across processes; FULL fsyncs each
    # commit so that a 2xx on /feedback survives a crash of the machine, not just the process.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute(f"PRAGMA synchronous={'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


# -- upgrade steps ------------------------------------------------------------------------


def _one_feedback_per_request(conn: Connection) -> None:
    """Schema 1: repeated feedback on a request moves to ``feedback_superseded`` (the first
    stays), then ``feedback.request_id`` gets a unique index."""
    fb, old = FeedbackRow.__table__, SupersededFeedbackRow.__table__
    first = select(func.min(fb.c.id)).group_by(fb.c.request_id)
    moved = select(*[fb.c[c.name] for c in old.columns]).where(
        fb.c.id.not_in(first), fb.c.id.not_in(select(old.c.id))
    )
    conn.execute(old.insert().from_select([c.name for c in old.columns], moved))
    conn.execute(fb.delete().where(fb.c.id.in_(select(old.c.id))))
    unique = [ix for ix in inspect(conn).get_indexes("feedback") if ix["unique"]]
    if not any(ix["column_names"] == ["request_id"] for ix in unique):
        conn.execute(text("DROP INDEX IF EXISTS ix_feedback_request_id"))
        conn.execute(text("CREATE UNIQUE INDEX ix_feedback_request_id ON feedback (request_id)"))


def _trigger_feedback_id(conn: Connection) -> None:
    """Schema 2: retraining triggers remember the largest feedback id, not a time."""
    columns = {c["name"] for c in inspect(conn).get_columns("retrain_triggers")}
    if "feedback_max_id" not in columns:
        conn.execute(text("ALTER TABLE retrain_triggers ADD COLUMN feedback_max_id INTEGER"))


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _one_feedback_per_request),
    (2, _trigger_feedback_id),
]
LATEST = MIGRATIONS[-1][0]


def schema_version(engine: Engine) -> int:
    """The last upgrade step applied to the database (0: none, or no database yet)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(SchemaRow.__tablename__):
            return 0
        return int(conn.execute(select(func.max(SchemaRow.version))).scalar_one() or 0)


def upgrade(engine: Engine, attempts: int = 5) -> int:
    """Create missing tables, apply the pending upgrade steps in order; the version reached.

    Each step runs in its own transaction together with its ``mixllm_schema`` row. Workers
    opening the same store at once race on the DDL and on each step; the losers' errors are
    retried, and every step is idempotent, so the store ends up upgraded exactly once.
    """
    for attempt in range(1, attempts + 1):
        try:
            _upgrade_once(engine)
            return schema_version(engine)
        except SQLAlchemyError:
            if attempt == attempts:
                raise
            time.sleep(0.1 * attempt)  # let the other worker's transaction finish
    raise AssertionError("unreachable")


def _upgrade_once(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    for version, step in MIGRATIONS:
        if schema_version(engine) >= version:
            continue
        with engine.begin() as conn:
            step(conn)
            conn.execute(SchemaRow.__table__.insert().values(version=version))
