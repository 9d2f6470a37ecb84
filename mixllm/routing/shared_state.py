"""An ``OnlineState`` shared by processes through a store of versioned JSON documents.

``VersionedDocs`` is the small contract a shared store keeps (a SQL table, Redis keys): each
document has a version that grows by one with every write, and a write is a compare-and-set
on that version. ``SharedStateStore`` keeps an ``OnlineState`` in one such document:

- ``read`` costs one version lookup and re-parses the document only when the version moved,
  so a change any process made is seen by the next read everywhere;
- ``transact`` is optimistic: read, change a copy, write it only if nobody wrote meanwhile
  (else read again and retry), so concurrent writers never lose an update;
- ``pinned()`` makes every read of one scope (e.g. one routing request) return the same
  snapshot: one version lookup per request, however often the request reads the state.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from mixllm.core.errors import MixLLMError, NotFittedError, StateStoreError
from mixllm.routing.state import OnlineState

T = TypeVar("T")

MAX_RETRIES = 50  # lost races in a row before a transaction gives up

log = logging.getLogger(__name__)


def load_doc(key: str, text: str | bytes) -> dict[str, Any]:
    """The JSON object stored under ``key``; ``StateStoreError`` naming the key when the
    stored text is not one (a corrupted or foreign document is the server's fault, never
    the request's)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise StateStoreError(f"state document {key!r} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise StateStoreError(
            f"state document {key!r} is a JSON {type(doc).__name__}, not an object"
        )
    return doc


class VersionedDocs(Protocol):
    """JSON documents by key, each with a version that every write moves up by one."""

    def version(self, key: str) -> int | None:
        """The document's version, None if there is none."""
        ...

    def get(self, key: str) -> tuple[int, dict[str, Any]] | None:
        """(version, document) read together, None if there is none."""
        ...

    def create(self, key: str, doc: dict[str, Any], version: int = 0) -> bool:
        """Store ``doc`` at ``version`` unless the key exists; True if it was stored."""
        ...

    def swap(self, key: str, version: int, doc: dict[str, Any]) -> bool:
        """Replace the document with ``doc`` at ``version + 1`` if it is still at ``version``;
        True if it was replaced (False: another writer came first)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the document."""
        ...


def update_doc(
    docs: VersionedDocs,
    key: str,
    change: Callable[[dict[str, Any] | None], tuple[dict[str, Any], T]],
) -> T:
    """Apply ``change`` (current document or None -> (new document, result)) atomically;
    retried from a fresh read whenever another writer came first."""
    for _ in range(MAX_RETRIES):
        got = docs.get(key)
        new, result = change(None if got is None else got[1])
        done = docs.create(key, new) if got is None else docs.swap(key, got[0], new)
        if done:
            return result
    raise StateStoreError(f"update of {key!r} lost {MAX_RETRIES} races in a row")


class SharedStateStore:
    """``StateStore`` on a ``VersionedDocs`` document (see the module docstring)."""

    def __init__(
        self,
        docs: VersionedDocs,
        key: str,
        on_missing: Callable[[], None] | None = None,
    ) -> None:
        self.docs = docs
        self.key = key
        # Called when the document is gone (store flushed, restarted without persistence,
        # key deleted): it stores a state again (e.g. the champion's initial one), so the
        # service heals on the next request instead of answering 503 until a restart.
        self.on_missing = on_missing
        self._cached: OnlineState | None = None
        self._lock = threading.Lock()
        self._pin: ContextVar[OnlineState | None] = ContextVar(f"pin:{key}", default=None)

    def read(self) -> OnlineState:
        """The current shared state (the pinned snapshot inside ``pinned()``)."""
        pinned = self._pin.get()
        return pinned if pinned is not None else self._fresh()

    @contextmanager
    def pinned(self) -> Iterator[OnlineState]:
        """Every ``read`` in the block returns this one fresh snapshot."""
        token = self._pin.set(self._fresh())
        try:
            yield self._pin.get()
        finally:
            self._pin.reset(token)

    def seed(self, state: OnlineState) -> OnlineState:
        """Store ``state`` unless a state is already stored; return the stored one."""
        self.docs.create(self.key, state.to_dict(), state.version)
        return self._fresh()

    def transact(self, change: Callable[[OnlineState], T]) -> T:
        """Apply ``change`` to a copy of the shared state and publish it atomically."""
        for _ in range(MAX_RETRIES):
            version, raw = self._get()
            state = _parse(self.key, version, raw)
            result = change(state)
            state.version = version + 1
            if self.docs.swap(self.key, version, state.to_dict()):
                self._remember(state)
                return result
        raise StateStoreError(f"state transaction lost {MAX_RETRIES} races in a row")

    def clear(self) -> None:
        """Delete the shared state (an operator's reset; the next ``seed`` starts afresh)."""
        self.docs.delete(self.key)
        self._cached = None

    def _fresh(self) -> OnlineState:
        version = self.docs.version(self.key)
        if version is None and self.on_missing is not None:
            self._cached = None  # the re-seeded document starts at a lower version
            self.on_missing()
            version = self.docs.version(self.key)
        if version is None:
            raise NotFittedError(f"no online state stored under {self.key!r} yet")
        cached = self._cached
        if cached is not None and cached.version == version:
            return cached
        return self._remember(_parse(self.key, *self._get()))

    def _get(self) -> tuple[int, dict[str, Any]]:
        got = self.docs.get(self.key)
        if got is None:
            raise NotFittedError(f"no online state stored under {self.key!r}")
        return got

    def _remember(self, state: OnlineState) -> OnlineState:
        with self._lock:
            if self._cached is None or state.version >= self._cached.version:
                self._cached = state
            return self._cached

    def __deepcopy__(self, memo: dict) -> SharedStateStore:
        # a copy shares the state by design: that is what the store is for
        return type(self)(self.docs, self.key, self.on_missing)


def _parse(key: str, version: int, raw: dict[str, Any]) -> OnlineState:
    try:
        state = OnlineState.from_dict(raw)
    except (MixLLMError, KeyError, TypeError, ValueError, AttributeError) as exc:
        # a corrupted or foreign document (or another mixllm's format): the store's
        # problem, reported as such (503), never a client's 400 or a 500 trace
        raise StateStoreError(
            f"state document {key!r} is not a readable online state ({type(exc).__name__}: {exc})"
        ) from None
    state.version = version  # the store's version is the truth
    return state


@contextmanager
def pinned_state(store: Any) -> Iterator[None]:
    """One state snapshot for the block if ``store`` supports it (a no-op otherwise)."""
    pin = getattr(store, "pinned", None)
    if pin is None:
        yield
        return
    with pin():
        yield


class MemoryDocs:
    """``VersionedDocs`` in this process only (nothing shared, nothing survives a restart)."""

    def __init__(self) -> None:
        self._docs: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    def version(self, key: str) -> int | None:
        """The document's version, None if there is none."""
        got = self._docs.get(key)
        return None if got is None else got[0]

    def get(self, key: str) -> tuple[int, dict[str, Any]] | None:
        """(version, a private copy of the document), None if there is none."""
        got = self._docs.get(key)
        return None if got is None else (got[0], load_doc(key, got[1]))

    def create(self, key: str, doc: dict[str, Any], version: int = 0) -> bool:
        """Store ``doc`` unless the key exists."""
        with self._lock:
            if key in self._docs:
                return False
            self._docs[key] = (version, json.dumps(doc))
            return True

    def swap(self, key: str, version: int, doc: dict[str, Any]) -> bool:
        """Write ``doc`` at ``version + 1`` if still at ``version``."""
        with self._lock:
            if self.version(key) != version:
                return False
            self._docs[key] = (version + 1, json.dumps(doc))
            return True

    def delete(self, key: str) -> None:
        """Remove the document."""
        with self._lock:
            self._docs.pop(key, None)
