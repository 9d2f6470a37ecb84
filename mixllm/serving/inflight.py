"""Requests in flight per LLM, the queueing state behind the latency penalty.

``InFlight`` counts this process's requests. ``SharedInFlight`` adds every other live
process's counts: each process publishes its own counts with an expiry (a heartbeat every
``beat_s``) into one shared document and reads the others' in the same write. A process
killed with SIGKILL stops beating, and its entry is dropped once it expires (``ttl_s``):
counts never leak. Requests read the counts in memory (no store round trip per request);
other processes' requests are seen within ``beat_s``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mixllm.core.errors import MixLLMError
from mixllm.routing.latency import QueueState
from mixllm.routing.shared_state import VersionedDocs, update_doc

log = logging.getLogger(__name__)


class InFlight:
    """Requests being answered per LLM, fed to the router as queueing state."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self.error: str | None = None  # why sharing the counts fails now (None: it works)

    @contextmanager
    def track(self, llm: str) -> Iterator[None]:
        """Count one request on ``llm`` for the duration of the block."""
        self.enter(llm)
        try:
            yield
        finally:
            self.leave(llm)

    def enter(self, llm: str) -> None:
        """One more request on ``llm``."""
        with self._lock:
            self._counts[llm] = self._counts.get(llm, 0) + 1

    def leave(self, llm: str) -> None:
        """One request on ``llm`` finished."""
        with self._lock:
            self._counts[llm] = max(0, self._counts.get(llm, 0) - 1)

    def local(self) -> dict[str, int]:
        """LLM -> requests in flight in this process."""
        with self._lock:
            return {k: v for k, v in self._counts.items() if v}

    def snapshot(self) -> dict[str, int]:
        """LLM -> requests in flight."""
        return self.local()

    def queue_state(self, router: Any, concurrency: Callable[[str], int]) -> dict[str, QueueState]:
        """QueueState of every active LLM of ``router``."""
        counts = self.snapshot()
        return {
            llm: QueueState(in_flight=counts.get(llm, 0), concurrency=concurrency(llm))
            for llm in router.llms_
        }

    def start(self) -> None:
        """Nothing to share in one process."""

    def stop(self) -> None:
        """Nothing to share in one process."""


class SharedInFlight(InFlight):
    """``InFlight`` summed over every live process sharing ``docs`` (module docstring)."""

    def __init__(
        self, docs: VersionedDocs, key: str, beat_s: float = 1.0, ttl_s: float = 5.0
    ) -> None:
        super().__init__()
        self.docs = docs
        self.key = key
        self.beat_s = beat_s
        self.ttl_s = max(ttl_s, 2 * beat_s)
        self.member = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._others: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> dict[str, int]:
        """LLM -> requests in flight here plus in every other live process."""
        counts = self.local()
        for llm, n in self._others.items():
            counts[llm] = counts.get(llm, 0) + n
        return counts

    def start(self) -> None:
        """Publish this process's counts every ``beat_s`` (a daemon thread)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mixllm-inflight", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop beating and withdraw this process's entry."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        try:
            update_doc(self.docs, self.key, lambda doc: (_without(doc, self.member), None))
        except MixLLMError as exc:
            log.warning("cannot withdraw the in-flight entry: %s", exc)

    def beat(self) -> None:
        """Publish this process's counts and read every other live process's."""
        now = time.time()
        mine = {"counts": self.local(), "until": now + self.ttl_s}

        def change(doc: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, int]]:
            live = {m: e for m, e in (doc or {}).items() if _live(m, e, now)}
            live[self.member] = mine
            return live, _summed(e["counts"] for m, e in live.items() if m != self.member)

        self._others = update_doc(self.docs, self.key, change)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
                self.error = None
            except MixLLMError as exc:  # keep serving on local counts; say why
                self.error = str(exc)
                log.warning("cannot share in-flight counts: %s", exc)
            except Exception as exc:  # never let the heartbeat die silently: log, retry
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("in-flight heartbeat failed; retrying in %s s", self.beat_s)
            self._stop.wait(self.beat_s)


def _live(member: str, entry: Any, now: float) -> bool:
    """True for a well-formed entry that has not expired; a malformed one (another program's,
    a corrupted write) is dropped with a warning instead of stopping the heartbeat."""
    try:
        ok = isinstance(entry["counts"], dict) and all(
            isinstance(n, int) for n in entry["counts"].values()
        )
        if ok:
            return float(entry["until"]) > now
    except (KeyError, TypeError, ValueError):
        pass
    log.warning("dropping the malformed in-flight entry %r: %r", member, entry)
    return False


def _summed(entries: Iterator[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in entries:
        for llm, n in counts.items():
            total[llm] = total.get(llm, 0) + int(n)
    return total


def _without(doc: dict[str, Any] | None, member: str) -> dict[str, Any]:
    return {m: e for m, e in (doc or {}).items() if m != member}
