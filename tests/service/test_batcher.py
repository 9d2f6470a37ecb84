"""The encode batcher: a lone query on an idle batcher is encoded on the caller's thread (no
hand-off to the batcher's thread), while concurrent queries are still embedded together in
passes of several, one pass at a time."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mixllm.serving.concurrency import EncodeBatcher

pytestmark = [pytest.mark.service, pytest.mark.timeout(60)]


class _SlowEncoder:
    """Records the thread and batch size of each pass; each pass takes ``pass_s``."""

    dim = 4
    fingerprint = "slow"

    def __init__(self, pass_s: float = 0.02) -> None:
        self.pass_s = pass_s
        self.passes: list[tuple[str, int]] = []
        self.running = 0
        self.overlapped = False

    def encode(self, texts, cache: bool = True) -> np.ndarray:
        self.running += 1
        self.overlapped |= self.running > 1
        time.sleep(self.pass_s)
        self.passes.append((threading.current_thread().name, len(texts)))
        self.running -= 1
        return np.ones((len(texts), self.dim), dtype=np.float32)


class _Tagger:
    def tag(self, texts, embeddings) -> list[list[str]]:
        return [["task:x"] for _ in texts]


class _Router:
    def __init__(self, encoder: _SlowEncoder) -> None:
        self.encoder_, self.tagger_ = encoder, _Tagger()


def test_a_lone_query_is_encoded_on_the_callers_thread() -> None:
    encoder = _SlowEncoder(pass_s=0.0)
    batcher = EncodeBatcher(embeddings=None)
    try:
        for i in range(5):
            X, tags = batcher.encode(_Router(encoder), f"query {i}")
            assert X.shape == (1, 4) and tags == ["task:x"]
        me = threading.current_thread().name
        assert encoder.passes == [(me, 1)] * 5
    finally:
        batcher.close()


def test_concurrent_queries_are_still_batched_one_pass_at_a_time() -> None:
    encoder = _SlowEncoder(pass_s=0.02)
    router = _Router(encoder)
    batcher = EncodeBatcher(max_batch=32, wait_ms=2.0)
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda i: batcher.encode(router, f"q {i}"), range(96)))
        assert all(X.shape == (1, 4) for X, _ in results)
        assert sum(n for _, n in encoder.passes) == 96
        assert max(n for _, n in encoder.passes) > 1  # concurrent queries shared passes
        assert len(encoder.passes) < 96 / 2
        assert not encoder.overlapped  # never two passes at once
    finally:
        batcher.close()


def test_close_racing_a_queued_query_never_strands_it() -> None:
    """close() while a query is between starting the batcher thread and entering its queue:
    the query is still encoded (before, the stop marker could overtake it and the request
    waited forever); a query after close() is encoded on its caller's thread."""
    router = _Router(_SlowEncoder(pass_s=0.0))
    batcher = EncodeBatcher()
    batcher._passing.acquire()  # a pass is running: the next query must queue
    start = batcher._ensure_thread

    def slow_start() -> None:  # widen the window between starting the thread and queuing
        start()
        time.sleep(0.3)

    batcher._ensure_thread = slow_start  # type: ignore[method-assign]
    closer = threading.Thread(target=batcher.close)
    with ThreadPoolExecutor(1) as pool:
        queued = pool.submit(batcher.encode, router, "queued")
        time.sleep(0.1)
        closer.start()
        time.sleep(0.1)
        batcher._passing.release()
        X, _ = queued.result(timeout=10)
    closer.join(timeout=10)
    assert X.shape == (1, 4) and not closer.is_alive()
    late, _ = batcher.encode(router, "after close")
    assert late.shape == (1, 4)
    assert not any(t.name == "mixllm-encode-batcher" for t in threading.enumerate())
