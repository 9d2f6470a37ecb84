"""A ``StateStore`` over Redis: one online state shared by every worker and replica.

The state is one JSON document (``OnlineState.to_dict``) under ``<prefix>:state`` and its
version under ``<prefix>:version``. A transaction is Redis' optimistic one (WATCH the
document, change a copy, MULTI/EXEC the new document and version; retry when another
writer won). A read costs one GET of the version and re-parses the document only when the
version moved, so a change made by any replica is seen by the next read everywhere
(``refresh_s`` > 0 trades that for fewer round trips: changes are then seen within
``refresh_s`` seconds). Redis persistence (AOF/RDB) is what makes the state survive a
Redis restart; a replica restart simply reads it again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from mixllm.core.errors import NotFittedError, StateStoreError
from mixllm.routing.state import OnlineState

T = TypeVar("T")

MAX_RETRIES = 50


class RedisStateStore:
    """``StateStore`` on a Redis server (see the module docstring)."""

    def __init__(self, client: Any, prefix: str = "mixllm:router", refresh_s: float = 0.0):
        self.client = client
        self.prefix = prefix
        self.refresh_s = refresh_s
        self._key = f"{prefix}:state"
        self._version_key = f"{prefix}:version"
        self._cached: OnlineState | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, prefix: str = "mixllm:router", **kw: Any) -> RedisStateStore:
        """Connect to ``url`` (``redis://host:port/db``); raises ``StateStoreError``."""
        import redis

        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise StateStoreError(f"cannot reach the Redis state store: {exc}") from None
        return cls(client, prefix, **kw)

    def read(self) -> OnlineState:
        """The current shared state (cached while its version is unchanged)."""
        now = time.monotonic()
        cached = self._cached
        if cached is not None and now - self._checked < self.refresh_s:
            return cached
        version = self._call(self.client.get, self._version_key)
        self._checked = now
        if version is None:
            raise NotFittedError(f"no online state in Redis under {self._key!r} yet")
        if cached is not None and cached.version == int(version):
            return cached
        raw = self._call(self.client.get, self._key)
        return self._remember(OnlineState.from_dict(json.loads(raw)))

    def seed(self, state: OnlineState) -> OnlineState:
        """Store ``state`` unless Redis already holds one (then keep and return that)."""
        doc = json.dumps(state.to_dict())
        with self.client.pipeline() as pipe:
            pipe.set(self._key, doc, nx=True)
            pipe.setnx(self._version_key, state.version)
            self._call(pipe.execute)
        self._checked = 0.0
        return self.read()

    def transact(self, change: Callable[[OnlineState], T]) -> T:
        """Apply ``change`` to a copy of the shared state and publish it atomically."""
        import redis

        with self.client.pipeline() as pipe:
            for _ in range(MAX_RETRIES):
                try:
                    pipe.watch(self._key)
                    raw = pipe.get(self._key)
                    if raw is None:
                        raise NotFittedError(f"no online state in Redis under {self._key!r}")
                    state = OnlineState.from_dict(json.loads(raw))
                    result = change(state)
                    state.version += 1
                    pipe.multi()
                    pipe.set(self._key, json.dumps(state.to_dict()))
                    pipe.set(self._version_key, state.version)
                    pipe.execute()
                except redis.WatchError:
                    continue  # another writer won: read its state and apply again
                except redis.RedisError as exc:
                    raise StateStoreError(f"Redis state store failed: {exc}") from None
                self._remember(state)
                return result
        raise StateStoreError(f"state transaction lost {MAX_RETRIES} races in a row")

    def clear(self) -> None:
        """Delete the shared state (an operator's reset; the next ``seed`` starts afresh)."""
        self._call(self.client.delete, self._key, self._version_key)
        self._cached = None

    def _remember(self, state: OnlineState) -> OnlineState:
        with self._lock:
            if self._cached is None or state.version >= self._cached.version:
                self._cached = state
            return self._cached

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        import redis

        try:
            return fn(*args)
        except redis.RedisError as exc:
            raise StateStoreError(f"Redis state store failed: {exc}") from None

    def __deepcopy__(self, memo: dict) -> RedisStateStore:
        # a copy shares the Redis state by design: that is what the store is for
        return RedisStateStore(self.client, self.prefix, self.refresh_s)
