"""Routing quality and speed of the encoder paths: each backend at each input length.

`mixllm benchmark-encoders` trains a router once per max token length (torch, the default
config otherwise) on the usual split, saves it, and loads that same artifact once per backend
(torch, onnx, onnx-int8: ``encoder.backend`` of its config rewritten), so the fine-tuned
weights are exported on first load exactly as the service does. Each variant routes the
held-out queries: AIQ of its quality/cost sweep, quality and cost at the default budget,
agreement of its choices with the reference's (torch at the first length), and single-query
embedding time (wall p50, and CPU per query: what bounds a busy service's throughput). The
"## Encoder backends" section of docs/BENCHMARKS.md is written from it; a variant passes when
the paired bootstrap interval of its quality difference to the reference holds 0.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mixllm.core.config import MixLLMConfig
from mixllm.core.prices import load_prices, prices_from_rows
from mixllm.data.loaders import load_data
from mixllm.data.splits import split
from mixllm.evaluation.evaluate import router_outputs
from mixllm.evaluation.scoring import evaluate_scores
from mixllm.routing.router import MixLLMRouter

BACKENDS = ("torch", "onnx", "onnx-int8")
LENGTHS = (64, 32)  # max tokens per query; the first is the reference's
N_BOOT = 1000


def _with_backend(saved: Path, backend: str, into: Path) -> MixLLMRouter:
    """The router saved at ``saved``, loaded with ``encoder.backend`` set to ``backend``."""
    shutil.copytree(saved, into)
    config = yaml.safe_load((into / "config.yaml").read_text())
    config.setdefault("encoder", {})["backend"] = backend
    (into / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return MixLLMRouter.load(into)


def single_query_times(
    encode: Callable[[str], Any], queries: list[str], warmup: list[str]
) -> tuple[list[float], float]:
    """(wall ms of each query, process CPU ms per query) of ``encode`` called on one query at
    a time, after ``warmup`` (model load, first-call allocations); CPU counts every thread
    (ONNX Runtime's pool included): what bounds a busy service's throughput."""
    for q in warmup:
        encode(q)
    times = []
    cpu0 = time.process_time()
    for q in queries:
        t0 = time.perf_counter()
        encode(q)
        times.append((time.perf_counter() - t0) * 1000)
    return times, (time.process_time() - cpu0) * 1000 / max(1, len(queries))


def _embed_ms(router: MixLLMRouter, queries: list[str]) -> tuple[float, float]:
    """(wall p50 ms, CPU ms per query) of one uncached query through the router's encoder."""
    times, cpu_ms = single_query_times(
        lambda q: router.encoder_.encode([q], cache=False), queries, queries[:5]
    )
    return float(np.median(times)), cpu_ms


def _paired_interval(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of mean(b - a) over queries (paired resampling)."""
    rng = np.random.default_rng(seed)
    diff = b - a
    idx = rng.integers(0, len(diff), (N_BOOT, len(diff)))
    means = diff[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _score(router: MixLLMRouter, test: Any) -> dict[str, Any]:
    """AIQ, default-budget quality/cost and per-query outcome of ``router`` on ``test``."""
    sweep, calibrated = router_outputs(router, test, name="mixllm", budget_pcts=())
    report = evaluate_scores(test, sweep, calibrated=calibrated)
    result = report.routers["mixllm"]
    choices = np.asarray(result.choices)
    rows = np.arange(len(choices))
    return {
        "aiq": float(result.aiq),
        "quality": float(result.mean_quality),
        "cost": float(result.mean_cost),
        "choices": choices,
        # a missing outcome counts 0 on both sides of the paired difference
        "per_query_quality": np.nan_to_num(np.asarray(test.quality, dtype=float)[rows, choices]),
    }


def variant_name(backend: str, max_seq_length: int) -> str:
    """The row name of one encoder path, e.g. ``onnx-int8 @ 32``."""
    return f"{backend} @ {max_seq_length}"


def compare_backends(
    data_path: str,
    config: MixLLMConfig | None = None,
    backends: tuple[str, ...] = BACKENDS,
    lengths: tuple[int, ...] = LENGTHS,
    timing_queries: int = 100,
) -> dict[str, Any]:
    """Train once per length in ``lengths``, score that router under each backend on the
    held-out split; the reference is ``backends[0]`` at ``lengths[0]``."""
    base_cfg = (config or MixLLMConfig()).updated({"encoder": {"backend": "torch"}})
    data = load_data(data_path)
    train, test = split(data, base_cfg)
    prices = prices_from_rows(train, load_prices(base_cfg.prices_path))
    queries = [str(q) for q in test.queries["query"]][:timing_queries]
    work = Path(tempfile.mkdtemp(prefix="mixllm-encoder-backends-"))
    scores = {}
    try:
        for length in lengths:
            cfg = base_cfg.updated({"encoder": {"max_seq_length": length}})
            trained = work / f"trained-{length}"
            MixLLMRouter(cfg, prices=prices).fit(train).save(trained)
            for backend in backends:
                name = variant_name(backend, length)
                router = _with_backend(trained, backend, work / f"{backend}-{length}")
                wall, cpu = _embed_ms(router, queries)
                scores[name] = {**_score(router, test), "embed_p50_ms": wall, "embed_cpu_ms": cpu}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _summarize(scores, len(test), data_path)


def _summarize(scores: dict[str, dict[str, Any]], n_test: int, data_path: str) -> dict[str, Any]:
    reference = next(iter(scores))
    base = scores[reference]
    rows = {}
    for name, s in scores.items():
        lo, hi = _paired_interval(base["per_query_quality"], s["per_query_quality"])
        rows[name] = {
            "aiq": s["aiq"],
            "quality": s["quality"],
            "cost": s["cost"],
            "quality_diff_ci95": [lo, hi],
            "agreement": float(np.mean(s["choices"] == base["choices"])),
            "embed_p50_ms": s["embed_p50_ms"],
            "embed_cpu_ms": s["embed_cpu_ms"],
            # equal within noise: the paired interval of the quality difference holds 0
            "equal_within_noise": bool(lo <= 0.0 <= hi),
        }
    return {"data": data_path, "n_test": n_test, "reference": reference, "backends": rows}


def render_section(results: dict[str, Any], command: str, note: str = "") -> str:
    """The "## Encoder backends" markdown of ``compare_backends``' results (``note``: about
    the machine the run had)."""
    ref = results.get("reference", "torch")
    lines = [
        "## Encoder backends",
        "",
        "One router trained per max token length (default config otherwise, torch "
        "embeddings), saved, and loaded once per `encoder.backend`; each routes the "
        f"{results['n_test']} held-out RouterBench queries. Quality and cost at the default "
        f"budget; quality difference to the reference (`{ref}`) with a paired bootstrap 95 % "
        "interval over queries; agreement = share of queries routed to the same LLM as the "
        "reference; embedding = one uncached query in process on ONNX Runtime's default "
        "threads (one per core): wall p50, and CPU per query over all threads (what bounds a "
        "busy service; the service runs one thread, see the Service section). Measured by",
        "",
        "```bash",
        command,
        "```",
        "",
        *([note, ""] if note else []),
        f"| encoder path (backend @ max tokens) | AIQ | quality | cost $ | quality - {ref} "
        "(95 % CI) | same LLM | embedding p50 ms | CPU ms/query | equal within noise |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["backends"].items():
        lo, hi = r["quality_diff_ci95"]
        cpu = r.get("embed_cpu_ms")
        lines.append(
            f"| {name} | {r['aiq']:.4f} | {r['quality']:.4f} | {r['cost']:.6f} | "
            f"[{lo:+.4f}, {hi:+.4f}] | {100 * r['agreement']:.1f} % | {r['embed_p50_ms']:.1f} | "
            f"{'n/a' if cpu is None else f'{cpu:.1f}'} | "
            f"{'yes' if r['equal_within_noise'] else '**no**'} |"
        )
    return "\n".join(lines) + "\n"
