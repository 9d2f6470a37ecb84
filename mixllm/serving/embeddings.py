"""Query embeddings for live requests: a bounded in-memory LRU in front of a router's encoder.

Training and batch evaluation embed through the encoder's on-disk cache (``encode``), which
pays off when the same texts come back run after run. A live query is embedded once and
routed at once: writing it to SQLite (a commit per request) would only add latency to the
request path. The service therefore keeps recent embeddings in memory, keyed by the
encoder's fingerprint and the text, and computes misses with the encoder's uncached path.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_MAX_ITEMS = 4096


def encode_uncached(encoder: Any, texts: Sequence[str]) -> np.ndarray:
    """(n, dim) float32 embeddings of ``texts``, bypassing any on-disk embedding cache."""
    return np.asarray(encoder.encode(list(texts), cache=False), dtype=np.float32)


class QueryEmbeddings:
    """Recent query embeddings (bounded LRU, thread-safe) keyed by encoder fingerprint + text."""

    def __init__(self, max_items: int = DEFAULT_MAX_ITEMS) -> None:
        self.max_items = max(0, max_items)
        self._rows: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def encode(self, encoder: Any, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) embeddings of ``texts`` under ``encoder``: from memory, else computed."""
        if not texts:
            return np.zeros((0, encoder.dim), dtype=np.float32)
        fingerprint = encoder.fingerprint
        keys = [(fingerprint, t) for t in texts]
        found = self._lookup(keys)
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            vecs = encode_uncached(encoder, [text for _, text in missing])
            fresh = dict(zip(missing, vecs, strict=True))
            self._store(fresh)
            found.update(fresh)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def clear(self) -> None:
        """Forget every embedding."""
        with self._lock:
            self._rows.clear()

    def _lookup(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        out = {}
        with self._lock:
            for key in keys:
                row = self._rows.get(key)
                if row is None:
                    continue
                self._rows.move_to_end(key)
                out[key] = row
            self.hits += len(out)
            self.misses += len(set(keys)) - len(out)
        return out

    def _store(self, rows: dict[tuple[str, str], np.ndarray]) -> None:
        if not self.max_items:
            return
        with self._lock:
            for key, row in rows.items():
                row = np.array(row, dtype=np.float32)  # own copy, never a view of a batch
                row.flags.writeable = False
                self._rows[key] = row
                self._rows.move_to_end(key)
            while len(self._rows) > self.max_items:
                self._rows.popitem(last=False)
