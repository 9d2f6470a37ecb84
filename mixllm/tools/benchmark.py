"""`mixllm benchmark`: the numbers in docs/BENCHMARKS.md, all measured in one run."""

from __future__ import annotations

import copy
import json
import logging
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mixllm.core.config import MixLLMConfig
from mixllm.core.types import RoutingData
from mixllm.data.loaders import load_data, load_messplus
from mixllm.data.splits import split
from mixllm.evaluation.evaluate import evaluate_router
from mixllm.evaluation.report import EvaluationReport
from mixllm.routing.encoder import SentenceEncoder
from mixllm.routing.latency import poisson_arrivals, simulate_stream
from mixllm.routing.router import MixLLMRouter, as_batch
from mixllm.tools.continual_experiments import ContinualSize
from mixllm.tools.sections import upsert_section, write_keeping_sections

log = logging.getLogger(__name__)

PAPER_QUALITY_PCT = 97.25
PAPER_COST_PCT = 24.18
RATE_X_CAPACITY = 4.0  # RouterBench stream: arrivals vs what the reference LLM alone serves

ABLATIONS = {
    "mixllm-no-tags": {"encoder": {"finetune": False}, "predictor": {"use_tag_features": False}},
    "mixllm-no-finetune": {"encoder": {"finetune": False}},
    "mixllm-no-uncertainty": {"bandit": {"alpha": 0.0}},
}


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


@dataclass
class StreamRow:
    """One router's outcome in a stream simulation."""

    name: str
    quality: float
    cost: float
    p50_s: float
    p95_s: float
    over_limit: float
    share: str


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
) -> Path:
    """Run every measurement and write the markdown report (+ Pareto PNG and JSON) to ``out``.

    ``limit`` keeps a stratified sample of that many queries (smoke runs); the committed
    numbers use all of them. ``continual``: the size of the continual-learning section
    (None: that section is not re-run and its previous text is kept).
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


@dataclass
class BenchmarkResults:
    """Everything one benchmark run measured."""

    data_path: str
    data: RoutingData
    train: RoutingData
    test: RoutingData
    report: EvaluationReport
    costs: pd.DataFrame
    rb_stream: list[StreamRow]
    mp_rows: list[StreamRow]
    mp_info: dict
    spd: dict[str, float]
    timings: dict[str, float]
    plot_name: str


def render(res: BenchmarkResults) -> str:
    """The markdown report."""
    data, train, test, report = res.data, res.train, res.test, res.report
    spd, timings, data_path = res.spd, res.timings, res.data_path
    js = report.to_json()
    mix = js["routers"]["mixllm"]
    q25 = mix["quality_pct_at_cost_pct"]["25"]
    best = max(js["routers"].items(), key=lambda kv: kv[1]["aiq"] if kv[0] != "oracle" else -1)
    met = mix["quality_pct"] >= PAPER_QUALITY_PCT and mix["cost_pct"] <= PAPER_COST_PCT
    lines = [
        "# MixLLM benchmarks",
        "",
        f"Generated by `mixllm benchmark` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPU cores, Python {platform.python_version()}. "
        f"Data: `{Path(data_path).name}` ({data.report.summary() if data.report else len(data)}); "
        f"split {len(train)} train / {len(test)} held-out queries, stratified by task, seed 0.",
        "",
        "## Headline",
        "",
        f"- Paper target: {PAPER_QUALITY_PCT} % of GPT-4's quality at <= {PAPER_COST_PCT} % of "
        f"its cost. MixLLM at its calibrated default budget (25 % of "
        f"`{js['reference_llm']}`): **{mix['quality_pct']:.2f} % quality at "
        f"{mix['cost_pct']:.2f} % cost** -> target {'MET' if met else 'NOT MET'}.",
        f"- Best quality on MixLLM's curve at cost <= 25 %: {_num(q25)} %.",
        f"- Highest AIQ apart from the oracle: `{best[0]}` ({best[1]['aiq']:.4f}); "
        f"MixLLM's AIQ {mix['aiq']:.4f}.",
        "",
        "## Quality vs cost on held-out queries",
        "",
        "AIQ: area under each router's non-decreasing convex hull of (mean cost, mean quality), "
        "over the same cost range for every router (cheapest to most expensive single LLM on "
        "the test set), divided by that range (RouterBench's definition). Sweep routers "
        "(MixLLM, KNN, MLP, SVM, MF, tag-mean) trace their curve by sweeping lambda in "
        "argmax(q - lambda * c); MixLLM's reported point is its calibrated budget.",
        "",
        report.to_markdown(),
        "",
        f"![Pareto curves]({res.plot_name})",
        "",
        "## Ablations",
        "",
        "| variant | AIQ | quality % | cost % | Q% @ cost<=25% |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ["mixllm", *ABLATIONS]:
        r = js["routers"][name]
        q = r["quality_pct_at_cost_pct"]["25"]
        lines.append(
            f"| {name} | {r['aiq']:.4f} | {r['quality_pct']:.1f} | "
            f"{r['cost_pct']:.1f} | {'-' if q is None else f'{q:.1f}'} |"
        )
    lines += [
        "",
        "`no-tags`: plain encoder, no tag features and no tag prior; `no-finetune`: tags kept, "
        "encoder not fine-tuned; `no-uncertainty`: alpha = 0. The latency ablation is in the "
        "stream tables below (with vs without the penalty).",
        "",
        "Reading them: a mean quality over this many held-out 0/1 outcomes has a standard "
        f"error of about {_se_pp(test):.1f} percentage points, so AIQ or quality differences "
        "of that size between these variants are noise. The uncertainty bonus cannot change "
        "a decision here: every LLM is observed on every training query, so the LinUCB "
        "width is the same for all of them; it matters for an LLM added at runtime, which "
        "starts with a wide bound and gets explored (see tests/unit/test_router.py).",
        "",
        "## Cost prediction (held-out queries)",
        "",
        "Cost = prompt tokens x input price + predicted output tokens x output price, prices "
        "derived from the data's own `total_cost` (`mixllm prices`).",
        "",
        res.costs.to_markdown(index=False, floatfmt=".4g"),
        "",
        "## Routing under a time constraint",
        "",
        "RouterBench has no latencies: service time = the LLM's time-to-first-token + recorded "
        "response tokens / its decode speed (price-table assumptions), FIFO queues with the "
        f"table's concurrency, Poisson arrivals at {RATE_X_CAPACITY:g}x what the reference LLM "
        "alone can serve; the held-out queries replayed 3 times in random order; budget 50 %; "
        "time limit as configured.",
        "",
        _stream_table(res.rb_stream),
        "",
        _messplus_text(res.mp_info),
        "",
        _stream_table(res.mp_rows) if res.mp_rows else "",
        "",
        "## Speed (this machine)",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| routing decision, 1 query, {spd['n_llms']} LLMs, embedding excluded, p50 | "
        f"{spd['decision_p50_ms']:.3f} ms |",
        f"| same, p99 | {spd['decision_p99_ms']:.3f} ms |",
        f"| embedding 1 query (uncached), p50 | {spd['embed_single_p50_ms']:.1f} ms |",
        f"| embedding batch throughput (uncached) | {spd['embed_batch_qps']:.0f} queries/s |",
        "| training, cold (empty caches: embed + fine-tune + fit) | "
        f"{timings['train_cold_s']:.1f} s |",
        f"| training, warm (cached embeddings and encoder) | {timings['train_warm_s']:.1f} s |",
        "",
    ]
    return "\n".join(lines)


def _messplus_text(info: dict) -> str:
    if not info:
        return "MESS+ latency file not found: the measured-latency experiment was skipped."
    return (
        "MESS+ (measured latencies of 3 Llama models, one request at a time each): "
        f"{info['n_train']} train / {info['n_test']} test queries, arrivals at "
        f"{info['rate_per_s']:.3f}/s (1.5x what the 70B model alone can serve), limit "
        f"{info['limit_s']} s; mean measured latency (s) {info['mean_latency_s']}. "
        "Quality is accuracy; the encoder is not fine-tuned here."
    )


def _se_pp(test: RoutingData) -> float:
    """Standard error, in points of the reference LLM's quality, of a mean test quality."""
    q = np.nanmean(test.quality)
    ref = np.nanmax(np.nanmean(test.quality, axis=0))
    return 100 * float(np.sqrt(q * (1 - q) / len(test))) / ref


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _stream_table(rows: list[StreamRow]) -> str:
    head = [
        "| router | quality | cost $/query | latency p50 s | p95 s | over limit | top choices |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    body = [
        f"| {r.name} | {r.quality:.3f} | {r.cost:.6f} | {r.p50_s:.2f} | {r.p95_s:.2f} | "
        f"{100 * r.over_limit:.1f} % | {r.share} |"
        for r in rows
    ]
    return "\n".join(head + body)
