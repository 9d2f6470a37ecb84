"""Concurrency primitives of the service: the batcher that embeds concurrent queries
together (requests in flight per LLM: ``mixllm.serving.inflight``)."""

from __future__ import annotations

import queue as queue_mod
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixllm.core.errors import InvalidRequestError
from mixllm.core.text import check_text
from mixllm.serving.embeddings import QueryEmbeddings


@dataclass
class _EncodeJob:
    router: Any
    text: str
    future: Future = field(default_factory=Future)


class EncodeBatcher:
    """Embeds concurrent queries together: one encoder pass serves many requests.

    An idle batcher encodes a lone query at once, on the caller's thread (handing it to the
    batcher's thread and back costs ~1.5 ms of a ~15 ms request); while a pass runs, queries
    queue up and the batcher's next pass takes up to ``max_batch`` of them (under load it
    also waits up to ``wait_ms`` for more). One pass runs at a time.
    Embeddings come from ``embeddings`` (recent queries in memory, the rest computed
    without the encoder's disk cache).
    """

    def __init__(
        self, max_batch: int = 32, wait_ms: float = 2.0, embeddings: QueryEmbeddings | None = None
    ) -> None:
        self.max_batch = max(1, max_batch)
        self.wait_s = max(0.0, wait_ms) / 1000
        self.embeddings = embeddings if embeddings is not None else QueryEmbeddings()
        self._queue: queue_mod.Queue[_EncodeJob | None] = queue_mod.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._passing = threading.Lock()  # held while a pass encodes (caller or batcher)
        self._taken = False  # the batcher holds a dequeued job: callers must not jump it
        self._closed = False  # after close(): nothing is queued, callers encode themselves
        self.batches = 0
        self.encoded = 0
        self._last_batch = 0

    def encode(self, router: Any, text: str) -> tuple[np.ndarray, list[str]]:
        """(embedding row (1, d), tags) of ``text`` under ``router``'s encoder and tagger."""
        job = _EncodeJob(router, text)
        if self._passing.acquire(blocking=False):
            try:
                if self._queue.empty() and not self._taken:  # idle: no hand-off
                    self._process([job])
                    return job.future.result()
            finally:
                self._passing.release()
        with self._lock:  # orders every job before close()'s stop marker, or after close
            queued = not self._closed
            if queued:
                self._ensure_thread()
                self._queue.put(job)
        if not queued:  # closed: no batcher thread to hand off to
            with self._passing:
                self._process([job])
        return job.future.result()

    def close(self) -> None:
        """Stop the batcher thread after it has encoded every query queued so far (a query
        arriving later is encoded on its caller's thread); waits up to 5 s for it."""
        with self._lock:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout=5)

    def _ensure_thread(self) -> None:
        """Start the batcher thread if it is not running (call with ``_lock`` held)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="mixllm-encode-batcher", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._taken = True
            with self._passing:
                self._taken = False
                self._process(self._gather(job))

    @staticmethod
    def _valid_only(group: list[_EncodeJob]) -> list[_EncodeJob]:
        """The jobs whose text can be encoded; the others fail alone, at once."""
        valid = []
        for job in group:
            try:
                check_text(job.text, "query")
            except InvalidRequestError as exc:
                job.future.set_exception(exc)
                continue
            valid.append(job)
        return valid

    def _gather(self, first: _EncodeJob) -> list[_EncodeJob]:
        """``first`` plus what queued up meanwhile, at most ``max_batch``.

        Never waits when idle (a lone query is encoded at once); only right after a batch
        of several, i.e. under load, does it wait up to ``wait_ms`` for company.
        """
        jobs = [first]
        under_load = self._last_batch > 1
        deadline = time.perf_counter() + (self.wait_s if under_load else 0.0)
        while len(jobs) < self.max_batch:
            timeout = deadline - time.perf_counter()
            try:
                nxt = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue_mod.Empty:
                break
            if nxt is None:
                self._queue.put(None)  # stop after this batch
                break
            jobs.append(nxt)
        self._last_batch = len(jobs)
        return jobs

    def _process(self, jobs: list[_EncodeJob]) -> None:
        # A hot swap can put two routers in one batch: each group uses its own encoder.
        groups: dict[int, list[_EncodeJob]] = {}
        for job in jobs:
            groups.setdefault(id(job.router), []).append(job)
        for group in groups.values():
            self._process_group(group)

    def _process_group(self, group: list[_EncodeJob]) -> None:
        group = self._valid_only(group)
        if not group:
            return
        router = group[0].router
        texts = [j.text for j in group]
        try:
            X = self.embeddings.encode(router.encoder_, texts)
            tags = router.tagger_.tag(texts, X)
        except Exception as exc:
            if len(group) > 1:
                # One request's bad text must not fail the others: encode each alone, so
                # that only the job that fails on its own hears about its failure.
                for job in group:
                    self._process_group([job])
                return
            group[0].future.set_exception(exc)
            return
        except BaseException as exc:  # the waiting requests must hear about any failure
            for j in group:
                j.future.set_exception(exc)
            raise
        self.batches += 1
        self.encoded += len(group)
        for i, j in enumerate(group):
            j.future.set_result((X[i : i + 1], tags[i]))
