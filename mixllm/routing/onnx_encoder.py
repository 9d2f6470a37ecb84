"""The ONNX Runtime path of a sentence-transformers encoder: export, cache and inference.

``ensure_export`` turns a SentenceTransformer model directory (the packaged MiniLM or a
fine-tuned copy) into an ONNX graph that computes the whole sentence embedding (transformer,
pooling, normalization), optionally with dynamic int8 weights, and caches it under a hash of
the weights' content, the sequence length and the variant: a second load finds it.
``OnnxSentenceModel`` runs it with the model's own fast tokenizer.

Why not ``SentenceTransformer(path, backend="onnx")``: it needs optimum-onnx, whose only
release (0.1.0) requires transformers<4.58, while the stack runs transformers 5. The export
here uses torch's own ONNX exporter and onnxruntime's quantizer; both are well-kept, and the
embeddings are checked against the torch model in tests/unit/test_onnx_encoder.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mixllm.core.errors import ConfigError, EncoderCacheError

BACKENDS = ("torch", "onnx", "onnx-int8")
EXPORT_VERSION = 1  # bump when the export changes: old caches are then not reused
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
WEIGHT_SUFFIXES = {".safetensors", ".bin", ".json", ".txt"}


ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")


def check_backend(backend: str) -> str:
    """``backend`` if it is one of ``BACKENDS`` and its packages import; ConfigError otherwise
    (naming the missing package and the way out)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown encoder backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend != "torch":
        missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigError(
                f"encoder backend {backend!r} needs the package(s) {', '.join(missing)} "
                "(installed with mixllm: re-run `bash .ci/setup` or `pip install mixllm`), "
                "or set encoder.backend: torch"
            )
    return backend


def weights_hash(model_dir: str | Path) -> str:
    """sha256 over the full content of a model directory's weight, config and vocab files."""
    root = Path(model_dir)
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file() and f.suffix in WEIGHT_SUFFIXES:
            h.update(f.relative_to(root).as_posix().encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:20]


def export_key(model_dir: str | Path, max_seq_length: int, backend: str) -> str:
    """Cache key of an export: weights content, sequence length, variant, export version."""
    return f"{weights_hash(model_dir)}-{max_seq_length}-{backend}-v{EXPORT_VERSION}"


def _embedding_module(model: Any, names: list[str]) -> Any:
    """A torch module (tensors named ``names``) -> sentence embedding of ``model``."""
    import torch

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: Any) -> Any:
            return self.inner(dict(zip(names, tensors, strict=True)))["sentence_embedding"]

    return SentenceEmbedding(model).eval()


def _export_graph(model: Any, out: Path) -> None:
    """Write ``model`` (a SentenceTransformer) as out/model.onnx with dynamic batch and length."""
    import torch

    sample = model.preprocess(["An example query to trace.", "Two."])
    names = [name for name in INPUTS if name in sample]  # not every model has token types
    args = tuple(sample[name] for name in names)
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    with torch.no_grad(), warnings.catch_warnings():
        # the trace warns about Python conditions on shapes; they hold for every batch
        warnings.simplefilter("ignore")
        # The TorchScript exporter: one trace, no onnxscript rewrite of the BERT graph.
        torch.onnx.export(
            _embedding_module(model, names),
            args,
            str(out / "model.onnx"),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def _quantize(out: Path) -> None:
    """Replace out/model.onnx by its dynamic int8 quantization (weights int8 per channel)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = out / "model.fp32.onnx"
    (out / "model.onnx").rename(fp32)
    # The quantizer advises (on the root logger, on every call) an optional pre-processing
    # pass; what its output is worth is measured instead (tests against torch, and
    # `mixllm benchmark-encoders` on routing quality), so the advice is noise for users.
    root = logging.getLogger()
    root.addFilter(_drop_preprocessing_advice)
    try:
        quantize_dynamic(
            str(fp32), str(out / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True
        )
    finally:
        root.removeFilter(_drop_preprocessing_advice)
    fp32.unlink()


def _drop_preprocessing_advice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Please consider to run pre-processing")


def _save_tokenizer(model: Any, out: Path, max_seq_length: int) -> None:
    """tokenizer.json of the model's fast tokenizer, and the settings ``encode`` needs."""
    tokenizer = model.tokenizer
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    settings = {
        "max_seq_length": max_seq_length,
        "pad_id": int(tokenizer.pad_token_id),
        "pad_token": str(tokenizer.pad_token),
        "dim": int(model.get_embedding_dimension()),
    }
    (out / "settings.json").write_text(json.dumps(settings))


def export(model: Any, out: Path, max_seq_length: int, quantize: bool) -> None:
    """Export the SentenceTransformer ``model`` into the empty directory ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model.max_seq_length = max_seq_length
    _export_graph(model, out)
    if quantize:
        _quantize(out)
    _save_tokenizer(model, out, max_seq_length)


_export_lock = threading.Lock()


def ensure_export(
    model_dir: str | Path,
    cache_root: str | Path,
    max_seq_length: int,
    backend: str,
    load_torch: Callable[[str], Any],
) -> Path:
    """The cached export of ``model_dir`` for ``backend`` (made now if missing).

    ``load_torch(path)`` loads the SentenceTransformer to export. The export is written to a
    temporary sibling of this process's own and renamed, so a crash never leaves a half export
    under the key, and processes exporting at once (the workers of one service starting
    together) never write into each other's files: the first rename wins, the others drop
    their copy. A folder under the key without settings.json (incomplete) is replaced.
    Failures of the cache itself are EncoderCacheError, never an error of the model.
    """
    if check_backend(backend) == "torch":
        raise ConfigError("the torch backend has no ONNX export")
    target = Path(cache_root) / "onnx" / export_key(model_dir, max_seq_length, backend)
    with _export_lock:
        if (target / "settings.json").exists():
            return target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
        except OSError as exc:
            raise EncoderCacheError(f"cannot write the ONNX export cache {target}: {exc}") from exc
        try:
            model = load_torch(str(model_dir))
            try:
                export(model, tmp, max_seq_length, quantize=backend == "onnx-int8")
                _publish(tmp, target)
            except OSError as exc:
                raise EncoderCacheError(f"cannot write the ONNX export {target}: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _readable(folder: Path) -> None:
    """Give the export folder made by mkdtemp (0700) the permissions of its parent, a folder
    made under the umask (reading the umask means setting it: process-wide, racy in threads)."""
    folder.chmod(folder.parent.stat().st_mode & 0o777)


def _publish(tmp: Path, target: Path) -> None:
    """Rename the finished export ``tmp`` to ``target`` unless another process got there
    first (renaming a directory onto a non-empty one fails, atomically). An incomplete
    ``target`` (no settings.json: an old crash, a hand-made folder) is moved aside first."""
    _readable(tmp)
    try:
        tmp.rename(target)
        return
    except OSError:
        if (target / "settings.json").exists():
            return
    discard(target)
    try:
        tmp.rename(target)
    except OSError:
        if not (target / "settings.json").exists():
            raise


def discard(export_dir: Path) -> None:
    """Remove a bad export: renamed aside first (atomic), so no process loads it meanwhile."""
    aside = export_dir.with_name(f"{export_dir.name}.bad-{os.getpid()}-{threading.get_ident()}")
    try:
        export_dir.rename(aside)
    except FileNotFoundError:
        return  # another process removed it already
    shutil.rmtree(aside, ignore_errors=True)


def load_export(
    model_dir: str | Path,
    cache_root: str | Path,
    max_seq_length: int,
    backend: str,
    load_torch: Callable[[str], Any],
    threads: int | None = None,
) -> OnnxSentenceModel:
    """The ONNX model of ``model_dir``, from the cache; a cached export that fails to load
    (truncated, damaged) is discarded and exported again, once: the cache is disposable."""
    for attempt in range(2):
        export_dir = ensure_export(model_dir, cache_root, max_seq_length, backend, load_torch)
        try:
            return OnnxSentenceModel(export_dir, threads)
        except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
            if attempt:
                raise EncoderCacheError(
                    f"the ONNX export {export_dir} fails to load even after a fresh export: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            with _export_lock:
                discard(export_dir)
    raise AssertionError("unreachable")


class OnnxSentenceModel:
    """An exported sentence encoder run by ONNX Runtime: normalized float32 embeddings."""

    def __init__(self, export_dir: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        root = Path(export_dir)
        self.settings = json.loads((root / "settings.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(self.settings["max_seq_length"]))
        self.tokenizer.enable_padding(
            pad_id=int(self.settings["pad_id"]), pad_token=self.settings["pad_token"]
        )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(root / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}

    @property
    def dim(self) -> int:
        """Embedding size."""
        return int(self.settings["dim"])

    def _batch(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        feeds = {k: v for k, v in feeds.items() if k in self._inputs}
        return self.session.run(None, feeds)[0]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(n, dim) float32 L2-normalized embeddings of ``texts``."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch, as sentence-transformers does.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._batch([texts[i] for i in idx])
        # Normalized again: int8 weights leave the in-graph norm a hair off 1.
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
