"""Versioned documents in Redis, and the ``StateStore`` on them: one online state shared by
every worker and replica.

A document ``key`` is the JSON string ``<prefix>:<key>`` beside its version
``<prefix>:<key>:version``. A read of both is one MGET; a write is Redis' optimistic
transaction (WATCH the version, check it, MULTI/EXEC the document and the next version), so
a writer that lost the race retries on the winner's document. Redis persistence (AOF/RDB)
is what makes the state survive a Redis restart; a replica restart simply reads it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mixllm.core.errors import StateStoreError
from mixllm.routing.shared_state import SharedStateStore, load_doc


def connect(url: str) -> Any:
    """A Redis client for ``url`` (``redis://host:port/db``) that answers a ping;
    ``StateStoreError`` when the server cannot be reached."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StateStoreError(f"cannot reach the Redis state store: {exc}") from None
    return client


def _version(key: str, raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        raise StateStoreError(f"state document {key!r} has version {raw!r}, not a number") from None


class RedisDocs:
    """``VersionedDocs`` under ``prefix`` on a Redis server (see the module docstring)."""

    def __init__(self, client: Any, prefix: str = "mixllm") -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str = "mixllm") -> RedisDocs:
        """Connect to ``url``; raises ``StateStoreError``."""
        return cls(connect(url), prefix)

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}:{key}", f"{self.prefix}:{key}:version"

    def version(self, key: str) -> int | None:
        """The document's version, None if there is none."""
        raw = self._call(self.client.get, self._keys(key)[1])
        return None if raw is None else _version(key, raw)

    def get(self, key: str) -> tuple[int, dict[str, Any]] | None:
        """(version, document), None if there is none."""
        doc, version = self._call(self.client.mget, list(self._keys(key)))
        if doc is None or version is None:
            return None
        return _version(key, version), load_doc(key, doc)

    def create(self, key: str, doc: dict[str, Any], version: int = 0) -> bool:
        """Store ``doc`` unless the key exists (document and version in one transaction)."""
        doc_key, version_key = self._keys(key)
        with self.client.pipeline() as pipe:
            pipe.set(doc_key, json.dumps(doc), nx=True)
            pipe.set(version_key, version, nx=True)
            return bool(self._call(pipe.execute)[0])

    def swap(self, key: str, version: int, doc: dict[str, Any]) -> bool:
        """Write ``doc`` at ``version + 1`` if still at ``version``."""
        import redis

        doc_key, version_key = self._keys(key)
        try:
            with self.client.pipeline() as pipe:
                pipe.watch(version_key)
                current = pipe.get(version_key)
                if current is None or _version(key, current) != version:
                    return False
                pipe.multi()
                pipe.set(doc_key, json.dumps(doc))
                pipe.set(version_key, version + 1)
                pipe.execute()
        except redis.WatchError:
            return False  # another writer came first
        except redis.RedisError as exc:
            raise StateStoreError(f"Redis state store failed: {exc}") from None
        return True

    def delete(self, key: str) -> None:
        """Remove the document and its version."""
        self._call(self.client.delete, *self._keys(key))

    @staticmethod
    def _call(fn: Callable[..., Any], *args: Any) -> Any:
        import redis

        try:
            return fn(*args)
        except redis.RedisError as exc:
            raise StateStoreError(f"Redis state store failed: {exc}") from None


class RedisStateStore(SharedStateStore):
    """``StateStore`` on a Redis server: the state under ``<prefix>:state``."""

    def __init__(self, client: Any, prefix: str = "mixllm:router") -> None:
        super().__init__(RedisDocs(client, prefix), "state")

    @classmethod
    def from_url(cls, url: str, prefix: str = "mixllm:router") -> RedisStateStore:
        """Connect to ``url`` (``redis://host:port/db``); raises ``StateStoreError``."""
        return cls(connect(url), prefix)

    def __deepcopy__(self, memo: dict) -> RedisStateStore:
        # a copy shares the Redis state by design: that is what the store is for
        return RedisStateStore(self.docs.client, self.docs.prefix)
