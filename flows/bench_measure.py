"""What `mixllm benchmark-service` sends and times in process: distinct RouterBench queries,
and single uncached queries through the champion's bare encoder."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any


def benchmark_queries(data: str | None, seed: int = 0) -> list[str]:
    """Distinct RouterBench queries (the `query` column), shuffled with ``seed``."""
    from mixllm.core.paths import default_data_path
    from mixllm.data.loaders import load_data

    routing = load_data(data or default_data_path())
    limit = int(os.environ.get("MIXLLM_MAX_QUERY_CHARS", "20000"))
    texts = [str(q).strip() for q in routing.queries["query"]]
    texts = list(dict.fromkeys(t for t in texts if t and len(t) <= limit))
    random.Random(seed).shuffle(texts)
    return texts


def take(pool: list[str], start: int, n: int) -> list[str]:
    """``n`` queries from ``pool`` starting at ``start``, wrapping around if the pool is short."""
    return [pool[(start + i) % len(pool)] for i in range(n)]


def _bare_encode(encoder: Any) -> Callable[[str], Any]:
    """One query through the encoder's model, never through its embedding cache."""
    compute = getattr(encoder, "_compute", None)  # SentenceEncoder: the model without the cache
    if compute is not None:
        return lambda q: compute([q], False)
    return lambda q: encoder.encode([q])


def embedding_times(version: str, queries: list[str], warmup: list[str]) -> dict[str, Any]:
    """Load champion ``version``'s router in process and time single uncached queries (ms):
    the baseline with its weights in the bare sentence-transformers (torch) model, and the
    encoder backend the router serves with, on the service's encoder threads (wall p50, and
    CPU per query: what bounds throughput once every core is busy)."""
    from mixllm.registry import stores as registry
    from mixllm.tools.encoder_backends import single_query_times
    from mixllm.tools.loadtest import percentile

    router, _ = registry.load_version(registry.MODEL_NAME, version)
    encoder = router.encoder_
    threads = None
    if hasattr(encoder, "use_threads"):  # timed as the service runs it
        from mixllm.serving.settings import ServiceSettings

        threads = ServiceSettings.from_env().encoder_threads
        encoder.use_threads(threads)
    backend = getattr(encoder, "backend", None)
    bare = encoder.with_backend("torch") if backend not in (None, "torch") else encoder
    times, cpu_ms = single_query_times(_bare_encode(bare), queries, warmup)
    served, served_cpu_ms = (
        (times, cpu_ms)
        if bare is encoder
        else single_query_times(_bare_encode(encoder), queries, warmup)
    )
    return {
        "encoder": type(encoder).__name__,
        "backend": backend,
        "max_seq_length": getattr(encoder, "max_seq_length", None),
        "samples": len(times),
        "p50_ms": round(percentile(times, 50), 3),
        "p99_ms": round(percentile(times, 99), 3),
        "served_backend_p50_ms": round(percentile(served, 50), 3),
        "served_backend_cpu_ms": round(served_cpu_ms, 3),
        "served_encoder_threads": threads,  # None: ONNX Runtime's default, one per core
        "cache_dir_configured": router.cfg.encoder.cache_dir,
    }
