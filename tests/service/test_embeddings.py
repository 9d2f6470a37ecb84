"""The service's in-memory query embeddings: same vectors as the encoder, bounded LRU keyed
by encoder fingerprint, and no write to the on-disk embedding cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from mixllm.routing.encoder import HashEncoder, SentenceEncoder
from mixllm.serving.embeddings import QueryEmbeddings, encode_uncached
from tests.tiny_data import query

pytestmark = pytest.mark.service


def test_vectors_equal_the_encoders_and_repeats_come_from_memory() -> None:
    encoder = HashEncoder(64)
    cache = QueryEmbeddings(max_items=8)
    texts = [query("mbpp", 1), query("winogrande", 2), query("mbpp", 1)]
    X = cache.encode(encoder, texts)
    np.testing.assert_array_equal(X, encoder.encode(texts))
    assert X.dtype == np.float32 and len(cache) == 2 and cache.misses == 2
    again = cache.encode(encoder, texts[:2])
    np.testing.assert_array_equal(again, X[:2])
    assert cache.hits == 2 and cache.misses == 2
    again[0, 0] = 42.0  # callers get copies: the cached row is untouched
    assert cache.encode(encoder, texts[:1])[0, 0] != 42.0


def test_the_lru_is_bounded_and_keyed_by_fingerprint() -> None:
    cache = QueryEmbeddings(max_items=3)
    small, large = HashEncoder(32), HashEncoder(64)
    for i in range(5):
        cache.encode(small, [query("arc-challenge", i)])
    assert len(cache) == 3
    assert cache.encode(large, [query("arc-challenge", 4)]).shape == (1, 64)  # not small's row
    misses = cache.misses
    cache.encode(small, [query("arc-challenge", 4)])  # still there: recently used
    assert cache.misses == misses
    cache.encode(small, [query("arc-challenge", 0)])  # evicted long ago
    assert cache.misses == misses + 1
    assert QueryEmbeddings(max_items=0).encode(small, ["x"]).shape == (1, 32)
    assert cache.encode(small, []).shape == (0, 32)


@pytest.mark.slow
def test_live_queries_bypass_the_disk_cache(tmp_path: Path) -> None:
    encoder = SentenceEncoder(cache_dir=tmp_path)
    texts = [query("mbpp", 3), query("winogrande", 4)]
    live = encode_uncached(encoder, texts)
    assert not (tmp_path / "embeddings.sqlite").exists()  # nothing written for live queries
    cached = encoder.encode(texts)  # training's path: through the disk cache
    np.testing.assert_allclose(live, cached, atol=1e-6)
    with sqlite3.connect(tmp_path / "embeddings.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM emb").fetchone()[0] == 2
