"""Versioned JSON documents in one SQL table (``VersionedDocs`` for SQLite or PostgreSQL).

The embedded default of the service's shared state: a SQLite file in WAL mode that every
worker of one machine opens, and that survives a restart. A write is a compare-and-set,
``UPDATE ... SET version = v + 1 WHERE key = :key AND version = :v``: the database makes it
atomic, and a writer that updated no row lost the race and retries on a fresh read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError

from mixllm.core.errors import ConfigError, StateStoreError, first_line
from mixllm.registry.feedback_schema import make_engine
from mixllm.registry.messages import redact_url
from mixllm.routing.shared_state import load_doc

T = TypeVar("T")

_meta = MetaData()
DOCS = Table(
    "mixllm_state",
    _meta,
    Column("key", String(255), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("doc", Text, nullable=False),
)


class SQLDocs:
    """``VersionedDocs`` in the ``mixllm_state`` table of any SQLAlchemy database."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = make_engine(url)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise ConfigError(
                f"state store URL {redact_url(url)} is not one mixllm can open "
                f"({first_line(exc)}); use redis://, rediss://, unix://, memory:// or a "
                "SQLAlchemy URL such as sqlite:///path/state.db or postgresql://host/db"
            ) from None
        except OSError as exc:
            raise StateStoreError(f"state store {redact_url(url)}: {exc}") from None
        self._run(self._create_table)

    def _create_table(self) -> None:
        # Workers start together: one may create the table between another's check and its
        # CREATE; that one then finds the table on its second look.
        try:
            _meta.create_all(self.engine)
        except SQLAlchemyError:
            _meta.create_all(self.engine)

    def version(self, key: str) -> int | None:
        """The document's version, None if there is none."""
        stmt = select(DOCS.c.version).where(DOCS.c.key == key)
        return self._read(lambda conn: conn.execute(stmt).scalar())

    def get(self, key: str) -> tuple[int, dict[str, Any]] | None:
        """(version, document), None if there is none."""
        stmt = select(DOCS.c.version, DOCS.c.doc).where(DOCS.c.key == key)
        row = self._read(lambda conn: conn.execute(stmt).first())
        return None if row is None else (int(row.version), load_doc(key, row.doc))

    def create(self, key: str, doc: dict[str, Any], version: int = 0) -> bool:
        """Insert ``doc`` unless the key exists."""
        stmt = insert(DOCS).values(key=key, version=version, doc=json.dumps(doc))
        try:
            self._write(lambda conn: conn.execute(stmt))
        except IntegrityError:
            return False
        return True

    def swap(self, key: str, version: int, doc: dict[str, Any]) -> bool:
        """Write ``doc`` at ``version + 1`` if still at ``version``."""
        stmt = (
            update(DOCS)
            .where(DOCS.c.key == key, DOCS.c.version == version)
            .values(version=version + 1, doc=json.dumps(doc))
        )
        return self._write(lambda conn: conn.execute(stmt).rowcount) == 1

    def delete(self, key: str) -> None:
        """Remove the document."""
        self._write(lambda conn: conn.execute(DOCS.delete().where(DOCS.c.key == key)))

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def _read(self, fn: Callable[[Any], T]) -> T:
        return self._run(lambda: _with(self.engine.connect, fn))

    def _write(self, fn: Callable[[Any], T]) -> T:
        return self._run(lambda: _with(self.engine.begin, fn))

    def _run(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except IntegrityError:
            raise  # a lost insert race: the caller's answer, not a failure
        except SQLAlchemyError as exc:
            raise StateStoreError(
                f"state store {redact_url(self.url)} failed: {first_line(exc)}"
            ) from None


def _with(open_conn: Callable[[], Any], fn: Callable[[Any], T]) -> T:
    with open_conn() as conn:
        return fn(conn)
