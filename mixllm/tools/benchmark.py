"""`mixllm benchmark`: the numbers in docs/BENCHMARKS.md, all measured in one run."""

from __future__ import annotations

import copy
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mixllm.core.config import MixLLMConfig
from mixllm.core.types import RoutingData
from mixllm.data.loaders import load_data, load_messplus
from mixllm.data.splits import split
from mixllm.evaluation.evaluate import evaluate_router
from mixllm.routing.encoder import SentenceEncoder
from mixllm.routing.latency import poisson_arrivals, simulate_stream
from mixllm.routing.router import MixLLMRouter, as_batch
from mixllm.tools.benchmark_report import (
    ABLATIONS,
    RATE_X_CAPACITY,
    BenchmarkResults,
    StreamRow,
    render,
)
from mixllm.tools.continual_experiments import ContinualSize
from mixllm.tools.sections import upsert_section, write_keeping_sections

log = logging.getLogger(__name__)


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _stream_row(name, result, data: RoutingData, limit: float) -> StreamRow:
    rows = np.arange(len(data))
    q = np.nanmean(data.quality[rows, result.choices])
    c = np.nanmean(data.cost[rows, result.choices])
    counts = pd.Series([data.llms[j] for j in result.choices]).value_counts(normalize=True)
    share = ", ".join(f"{k.split('/')[-1]} {v:.0%}" for k, v in counts.head(3).items())
    return StreamRow(
        name,
        float(q),
        float(c),
        float(np.percentile(result.latency_s, 50)),
        float(np.percentile(result.latency_s, 95)),
        result.over_limit(limit),
        share,
    )


def stream_experiment(
    router: MixLLMRouter,
    data: RoutingData,
    service_s: np.ndarray,
    rate_per_s: float,
    budget_pct: float,
    seed: int = 0,
    repeat: int = 1,
) -> list[StreamRow]:
    """Route ``data`` as a Poisson stream with and without the latency penalty.

    ``repeat`` > 1 replays the queries that many times in random order, so the queues
    reach a steady state instead of a start-up transient.
    """
    if repeat > 1:
        order = np.random.default_rng(seed).permutation(np.tile(np.arange(len(data)), repeat))
        data, service_s = data.subset(order), service_s[order]
    texts = data.queries["query"].tolist()
    X = router.encoder_.encode(texts)
    tags = router.tagger_.tag(texts, X)
    tokens = as_batch(data.queries)[1]
    concurrency = np.array([router.prices_[m].concurrency for m in data.llms])
    arrivals = poisson_arrivals(len(data), rate_per_s, seed)
    limit = router.cfg.latency.max_latency_s
    out = []
    for name, enabled in (("mixllm (no latency penalty)", False), ("mixllm", True)):
        variant = copy.copy(router)
        variant.config = router.cfg.updated({"latency": {"enabled": enabled}})

        def decide(i, queues, variant=variant):
            queue = {m: queues[j] for j, m in enumerate(data.llms)}
            d = variant.decide(
                X[i : i + 1],
                [tags[i]],
                tokens[i : i + 1],
                budget_pct=budget_pct,
                queue=queue,
            )[0]
            return data.llms.index(d.llm)

        res = simulate_stream(arrivals, service_s, concurrency, decide)
        out.append(_stream_row(name, res, data, limit))
    for j, m in enumerate(data.llms):
        if m in (router.reference_llm_, data.llms[int(np.argmin(np.nanmean(data.cost, 0)))]):
            res = simulate_stream(arrivals, service_s, concurrency, lambda i, q, j=j: j)
            out.append(_stream_row(f"always {m}", res, data, limit))
    return out


def modelled_service_times(router: MixLLMRouter, data: RoutingData) -> np.ndarray:
    """Service time from each LLM's speed spec and its recorded response length."""
    toks = np.nan_to_num(data.output_tokens, nan=np.nanmean(data.output_tokens))
    return np.column_stack(
        [
            router.prices_[m].ttft_s + toks[:, j] / router.prices_[m].tokens_per_s
            for j, m in enumerate(data.llms)
        ]
    )


def speed(router: MixLLMRouter, test: RoutingData, n: int = 300) -> dict[str, float]:
    """Decision latency (embedding excluded), embedding latency and throughput."""
    texts, tokens = as_batch(test.queries.iloc[:n])
    X = router.encoder_.encode(texts)
    tags = router.tagger_.tag(texts, X)
    times = []
    for i in range(len(texts)):
        t0 = time.perf_counter()
        router.decide(X[i : i + 1], [tags[i]], tokens[i : i + 1])
        times.append(time.perf_counter() - t0)
    fresh = copy.copy(router.encoder_)  # same weights, no cache: every call really embeds
    if isinstance(fresh, SentenceEncoder):
        fresh.cache_dir, fresh._cache = None, None
    fresh.encode(["warm-up"])
    single = []
    for t in texts[:50]:
        t0 = time.perf_counter()
        fresh.encode([t])
        single.append(time.perf_counter() - t0)
    _, batch_s = _timed(fresh.encode, texts)
    return {
        "decision_p50_ms": 1e3 * float(np.percentile(times, 50)),
        "decision_p99_ms": 1e3 * float(np.percentile(times, 99)),
        "embed_single_p50_ms": 1e3 * float(np.percentile(single, 50)),
        "embed_batch_qps": len(texts) / batch_s,
        "n_llms": len(router.llms_),
    }


def cost_error(router: MixLLMRouter, test: RoutingData) -> pd.DataFrame:
    """Predicted vs recorded cost per LLM on held-out queries."""
    pred = router.predict(test.queries)
    rel = np.abs(pred.cost - test.cost) / test.cost
    return pd.DataFrame(
        {
            "llm": test.llms,
            "mean recorded $": np.nanmean(test.cost, axis=0),
            "mean predicted $": pred.cost.mean(axis=0),
            "median rel. error": np.nanmedian(rel, axis=0),
            "mean rel. error": np.nanmean(rel, axis=0),
        }
    )


def messplus_experiment(path: str, config: MixLLMConfig, n: int = 3000) -> tuple[list, dict]:
    """Latency-constrained routing over 3 Llama sizes with their MEASURED latencies."""
    data = _sample(load_messplus(path), n)
    cfg = config.updated({"encoder": {"finetune": False}, "latency": {"max_latency_s": 8.0}})
    train, test = split(data, cfg)
    router = MixLLMRouter(cfg).fit(train)
    big = test.llms.index("llama-3.3-70b")
    mean_big = float(np.nanmean(test.latency_s[:, big]))
    rate = 1.5 / mean_big  # 1.5x what the single-slot 70B model can serve
    service = np.nan_to_num(test.latency_s, nan=np.nanmean(test.latency_s))
    rows = stream_experiment(router, test, service, rate, budget_pct=100.0)
    info = {
        "n_train": len(train),
        "n_test": len(test),
        "rate_per_s": rate,
        "limit_s": cfg.latency.max_latency_s,
        "mean_latency_s": {
            m: round(float(v), 3)
            for m, v in zip(test.llms, np.nanmean(test.latency_s, 0), strict=True)
        },
    }
    return rows, info


def _default_messplus() -> str:
    from mixllm.core.paths import default_data_path

    return str(default_data_path().parent / "messplus" / "messplus_all.csv")


def run_benchmark(
    data_path: str,
    out: str | Path,
    messplus_path: str | None = None,
    config: MixLLMConfig | None = None,
    limit: int | None = None,
    continual: ContinualSize | None = None,
    quality: bool = True,
) -> Path:
    """Run every measurement and write the markdown report (+ Pareto PNG and JSON) to ``out``.

    ``limit`` keeps a stratified sample of that many queries (smoke runs); the committed
    numbers use all of them. ``continual``: the size of the continual-learning section
    (None: that section is not re-run and its previous text is kept); ``quality=False``
    keeps the previous peers / intervals / out-of-domain section instead of re-running it.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    base = config or MixLLMConfig()
    data = load_data(data_path)
    if limit:
        data = _sample(data, limit)
    train, test = split(data, base)
    with tempfile.TemporaryDirectory() as cold_cache:
        cold_cfg = base.updated({"encoder": {"cache_dir": cold_cache}})
        _, t_cold = _timed(MixLLMRouter(cold_cfg).fit, train)
        _, t_warm = _timed(MixLLMRouter(cold_cfg).fit, train)
    router = MixLLMRouter(base).fit(train)
    variants = {name: MixLLMRouter(base.updated(upd)).fit(train) for name, upd in ABLATIONS.items()}
    report = evaluate_router(router, train, test, variants=variants)
    plot = report.plot_pareto(out.with_name("pareto.png"), title="RouterBench held-out split")
    costs = cost_error(router, test)
    rb_stream = stream_experiment(
        router,
        test,
        modelled_service_times(router, test),
        rate_per_s=_rate_for(router, test),
        budget_pct=50.0,
        repeat=3,
    )
    mp_path = messplus_path or _default_messplus()
    mp_rows, mp_info = (
        messplus_experiment(mp_path, base, n=limit or 3000) if Path(mp_path).exists() else ([], {})
    )
    spd = speed(router, test)
    timings = {"train_cold_s": t_cold, "train_warm_s": t_warm}
    out.with_suffix(".json").write_text(
        json.dumps({"evaluation": report.to_json(), "speed": spd, "timings": timings}, indent=2)
    )
    text = render(
        BenchmarkResults(
            data_path,
            data,
            train,
            test,
            report,
            costs,
            rb_stream,
            mp_rows,
            mp_info,
            spd,
            timings,
            plot.name,
        )
    )
    write_keeping_sections(out, text)
    from mixllm.tools.bench_quality import quality_section  # peers, CIs, OOD, budget fidelity

    if quality:
        upsert_section(out, "quality", quality_section(data_path, out.parent, base, limit))
    if continual is not None:
        run_continual_section(data_path, out, messplus_path, base, continual)
    return out


def run_continual_section(
    data_path: str,
    out: str | Path,
    messplus_path: str | None = None,
    config: MixLLMConfig | None = None,
    size: ContinualSize | None = None,
) -> Path:
    """Run the continual-learning experiments and (re)write only their section of ``out``."""
    from mixllm.tools.continual_report import SECTION, continual_section

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    mp_path = messplus_path or _default_messplus()
    text, _ = continual_section(
        data_path, out, mp_path, config or MixLLMConfig(), size or ContinualSize()
    )
    upsert_section(out, SECTION, text)
    return out


def _sample(data: RoutingData, n: int) -> RoutingData:
    """A seeded random sample of ``n`` queries (in their original order)."""
    rng = np.random.default_rng(0)
    idx = rng.choice(len(data), min(n, len(data)), replace=False)
    return data.subset(np.sort(idx))


def _rate_for(router: MixLLMRouter, test: RoutingData) -> float:
    """An arrival rate at which the reference LLM alone would be overloaded 4x."""
    ref = test.llms.index(router.reference_llm_)
    service = modelled_service_times(router, test)[:, ref].mean()
    return RATE_X_CAPACITY * router.prices_[router.reference_llm_].concurrency / service
