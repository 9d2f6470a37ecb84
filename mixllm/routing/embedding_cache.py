"""The content-addressed embedding cache: ``text_key`` hashes a text under an encoder's
fingerprint, ``EmbeddingCache`` keeps vectors in SQLite, ``encode_cached`` embeds the misses."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def text_key(fingerprint: str, text: str) -> str:
    """Content hash of ``text`` under the encoder ``fingerprint``."""
    return hashlib.sha256(f"{fingerprint}\0{text}".encode()).hexdigest()


class EmbeddingCache:
    """Content-addressed embedding store (SQLite): a query seen once is never embedded again."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
            self._conn = conn
        return self._conn

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for the keys that are present."""
        out: dict[str, np.ndarray] = {}
        with self._lock:
            db = self._db()
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = db.execute(f"SELECT key, vec FROM emb WHERE key IN ({marks})", chunk)
                out.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        return out

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        """Store vectors (float32)."""
        rows = [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()]
        with self._lock:
            db = self._db()
            db.executemany("INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)", rows)
            db.commit()

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])


def encode_cached(
    texts: Sequence[str],
    fingerprint: str,
    dim: int,
    compute: Callable[[list[str]], np.ndarray],
    cache: EmbeddingCache | None,
) -> np.ndarray:
    """Encode ``texts`` with ``compute`` for the misses only; duplicates are embedded once."""
    out = np.empty((len(texts), dim), dtype=np.float32)
    keys = [text_key(fingerprint, t) for t in texts]
    found = cache.get_many(list(dict.fromkeys(keys))) if cache is not None else {}
    missing = list(dict.fromkeys(k for k in keys if k not in found))
    if missing:
        first_text = {}
        for k, t in zip(keys, texts, strict=True):
            first_text.setdefault(k, t)
        vecs = compute([first_text[k] for k in missing])
        fresh = dict(zip(missing, vecs, strict=True))
        if cache is not None:
            cache.put_many(fresh)
        found.update(fresh)
    for i, k in enumerate(keys):
        out[i] = found[k]
    return out
