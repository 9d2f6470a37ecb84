"""The results of `mixllm benchmark-service`: its goals, the verdict on them, and the
"## Service" markdown section and console summary written from one run's numbers."""

from __future__ import annotations

import math
from typing import Any

from flows.bench_scale import render_scale

GOAL_P50_MS = 15.0  # /route p50 at concurrency 1
GOAL_RATIO = 1.3  # /route p50 at concurrency 1 over the bare embedding p50, same run
GOAL_RPS = 100.0  # /route throughput at concurrency 16
LOW, HIGH = 1, 16  # the two concurrencies measured


def goals_met(
    low: Any, high: Any, durability_ok: bool, ratio: float | None = None
) -> dict[str, bool]:
    """Which goals the run met: ``low`` and ``high`` are the two ``LoadResult``s, ``ratio``
    the /route p50 over the bare embedding p50."""
    return {
        "p50_c1": bool(low.errors == 0 and low.p50_ms <= GOAL_P50_MS),
        "ratio_c1": bool(low.errors == 0 and ratio is not None and ratio <= GOAL_RATIO),
        "rps_c16": bool(high.errors == 0 and high.throughput_rps >= GOAL_RPS),
        "durability": durability_ok,
    }


def capacity(
    emb: dict[str, Any], cached: Any, cpus: int, workers: int = 1
) -> dict[str, float | None]:
    """What bounds fresh-query throughput on this machine. Each worker encodes in one batcher
    thread on a session of ``emb["served_encoder_threads"]`` threads (None: one per CPU), so
    the encoder alone caps it at min(cpus, workers x threads) x 1000 / the served encoder's
    CPU ms per single query (batches cost a little less per query); ``cached`` (the HIGH run
    repeated with every embedding in the service's memory) is serving without the encoder,
    the load generator sharing the same CPUs."""
    cpu_ms = emb.get("served_backend_cpu_ms")
    threads = emb.get("served_encoder_threads") or cpus
    parallel = min(cpus, workers * threads)
    encoder_rps = parallel * 1000.0 / cpu_ms if cpu_ms else None
    return {
        "cpus": cpus,
        "encoder_parallelism": parallel,
        "encoder_cpu_ms_per_query": cpu_ms,
        "encoder_only_max_rps": None if encoder_rps is None else round(encoder_rps, 1),
        "serving_without_encoder_rps": round(cached.throughput_rps, 1),
    }


def _ms(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.1f}"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def render_section(r: dict[str, Any]) -> str:
    """The "## Service" markdown of one run's results ``r``."""
    low, high = r["route"][f"c{LOW}"], r["route"][f"c{HIGH}"]
    emb, dur, goals, m = r["embedding"], r["durability"], r["goals"], r["machine"]
    new_rows = dur["rows_after"] - dur["rows_before"]
    workers = f"{r['workers']} worker" + ("s" if r["workers"] != 1 else "")
    rows = [
        f"| {x['concurrency']} | {x['requests']} | {x['errors']} | {_ms(x['p50_ms'])} | "
        f"{_ms(x['p90_ms'])} | {_ms(x['p99_ms'])} | {x['throughput_rps']:.1f} | "
        f"{_ms(x['decision_p50_ms'])} |"
        for x in (low, high)
    ]
    cached = (r.get("route_embeddings_cached") or {}).get(f"c{HIGH}")
    if cached:
        rows.append(
            f"| {HIGH}, same queries again (embeddings cached) | {cached['requests']} | "
            f"{cached['errors']} | {_ms(cached['p50_ms'])} | {_ms(cached['p90_ms'])} | "
            f"{_ms(cached['p99_ms'])} | {cached['throughput_rps']:.1f} | "
            f"{_ms(cached['decision_p50_ms'])} |"
        )
    ratio = r["ratio_route_p50_to_embedding_p50"]
    goal_rows = [
        f"| `/route` p50 <= {GOAL_RATIO:g} x bare embedding p50 at concurrency {LOW} | "
        f"{'n/a' if ratio is None else f'{ratio:.2f}'} x | {_yes(goals.get('ratio_c1', False))} |",
        f"| `/route` p50 <= {GOAL_P50_MS:g} ms at concurrency {LOW} | "
        f"{_ms(low['p50_ms'])} ms | {_yes(goals['p50_c1'])} |",
        f"| >= {GOAL_RPS:g} requests/s at concurrency {HIGH} | "
        f"{high['throughput_rps']:.1f} req/s | {_yes(goals['rps_c16'])} |",
        f"| {dur['n']} concurrent feedback posts -> exactly {dur['n']} new rows | "
        f"+{new_rows} rows, {dur['accepted']} accepted | {_yes(goals['durability'])} |",
    ]
    if emb["cache_dir_configured"]:
        cache = f"the router's configured `{emb['cache_dir_configured']}` (may hold embeddings)"
    else:
        cache = (
            "cold (a fresh `MIXLLM_HOME`), and each measured query is a distinct RouterBench "
            "query sent once, so every request computes its embedding"
        )
    scale = render_scale(r["scale"]) if r.get("scale") else []
    if r["queries"]["reused"]:
        cache += f" (only {r['queries']['distinct']} distinct queries: some were sent twice)"
    lines = [
        "## Service",
        "",
        f"`POST /route` of `mixllm serve` (BentoML, {workers}, router "
        f"v{r['router_version']} @champion), embedding included, on real RouterBench queries; "
        "feedback durability under load. Measured by",
        "",
        "```bash",
        r["command"],
        "```",
        "",
        f"on {r['date']}: {m['cpus']} CPUs, load average {m['loadavg_start']:.2f} before the "
        f"service started and {m['loadavg_end']:.2f} at the end{m['note']}. Embedding cache of "
        f"the served router: {cache}. {r['warmup_requests']} warm-up requests first, not "
        'counted. Latency is measured at the client (HTTP included); "decision" is the '
        "`decision_ms` the service reports.",
        "",
        "| concurrency | requests | errors | p50 ms | p90 ms | p99 ms | throughput req/s "
        "| decision p50 ms |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Bare single-query embedding with the champion's weights in the sentence-transformers "
        f"torch model (`{emb['encoder']}`, max {emb['max_seq_length']} tokens) in process after "
        f"the service stopped, same run, {emb['samples']} uncached queries: p50 "
        f"{_ms(emb['p50_ms'])} ms, p99 {_ms(emb['p99_ms'])} ms; the served encoder backend "
        f"(`{emb.get('backend')}`): p50 {_ms(emb.get('served_backend_p50_ms'))} ms. Ratio of "
        f"`/route` p50 at concurrency {LOW} to the bare embedding p50: "
        f"**{'n/a' if ratio is None else f'{ratio:.2f}'}**.",
        "",
        *_capacity_lines(r.get("capacity")),
        *scale,
        f"Feedback durability: {dur['n']} queries routed, then {dur['posted']} feedback posts "
        f"all in flight at once -> {dur['accepted']} accepted (2xx), `feedback_count` "
        f"{dur['rows_before']} -> {dur['rows_after']} (+{new_rows}).",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        *goal_rows,
        "",
        f"Raw numbers: [{r['json_name']}]({r['json_name']}).",
    ]
    return "\n".join(lines) + "\n"


def _capacity_lines(cap: dict[str, Any] | None) -> list[str]:
    if not cap or cap.get("encoder_cpu_ms_per_query") is None:
        return []
    return [
        f"What bounds throughput here: the served encoder uses "
        f"{cap['encoder_cpu_ms_per_query']:.1f} ms of CPU per single query (all its threads; "
        f"batches cost a little less per query) and runs on "
        f"{cap.get('encoder_parallelism', cap['cpus'])} of the {cap['cpus']} CPUs at once, so "
        f"encoding alone caps fresh queries at about {cap['encoder_only_max_rps']:.0f} req/s "
        f"with nothing else running; serving without "
        f"the encoder (the concurrency-{HIGH} queries sent again, embeddings cached, the load "
        f"generator on the same CPUs) reaches {cap['serving_without_encoder_rps']:.1f} req/s. "
        "Fresh-query throughput pays both on the same CPUs.",
        "",
    ]


def _capacity_summary(cap: dict[str, Any] | None) -> str:
    if not cap or cap.get("encoder_cpu_ms_per_query") is None:
        return ""
    return (
        f"encoder CPU {cap['encoder_cpu_ms_per_query']:.1f} ms/query (caps at "
        f"{cap['encoder_only_max_rps']:.0f} req/s); without the encoder "
        f"{cap['serving_without_encoder_rps']:.1f} req/s\n"
    )


def summary(r: dict[str, Any], out: str, json_path: str) -> str:
    """The console lines of one run's results ``r``."""
    low, high = r["route"][f"c{LOW}"], r["route"][f"c{HIGH}"]
    emb, dur, goals = r["embedding"], r["durability"], r["goals"]
    return (
        f"/route c={LOW}: p50 {_ms(low['p50_ms'])} ms, p99 {_ms(low['p99_ms'])} ms, "
        f"{low['throughput_rps']:.1f} req/s, {low['errors']} errors\n"
        f"/route c={HIGH}: p50 {_ms(high['p50_ms'])} ms, p99 {_ms(high['p99_ms'])} ms, "
        f"{high['throughput_rps']:.1f} req/s, {high['errors']} errors\n"
        f"bare embedding p50 {_ms(emb['p50_ms'])} ms; route p50 / embedding p50 = "
        f"{r['ratio_route_p50_to_embedding_p50']}\n"
        + _capacity_summary(r.get("capacity"))
        + f"durability: posted {dur['posted']}, accepted {dur['accepted']}, rows "
        f"{dur['rows_before']} -> {dur['rows_after']}\n"
        f"goals: p50<={GOAL_P50_MS:g}ms@c1 {goals['p50_c1']}, >={GOAL_RPS:g}rps@c16 "
        f"{goals['rps_c16']}, durability {goals['durability']}\n"
        f"Wrote {out} (service section) and {json_path}."
    )
