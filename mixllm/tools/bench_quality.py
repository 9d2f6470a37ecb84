"""The quality section of docs/BENCHMARKS.md: peers at their published configurations,
both AIQ conventions with bootstrap intervals, out-of-domain APGR and budget fidelity.

``quality_section`` returns the markdown (and writes its plots next to the report);
``mixllm benchmark`` puts it between ``<!-- quality:start/end -->`` markers, and
``mixllm benchmark --only quality`` refreshes only that section. Two parts sit in sections
of their own inside it, refreshed alone: the in-domain tables with budget fidelity
(``IN_DOMAIN_SECTION``, ``--only in-domain``) and the leave-one-task-out tagging table
(``TAGS_SECTION``, ``--only tags``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mixllm.core.config import MixLLMConfig
from mixllm.core.prices import PriceTable, load_prices, prices_from_rows
from mixllm.core.types import RoutingData
from mixllm.data.loaders import load_data
from mixllm.data.splits import split
from mixllm.evaluation import metrics
from mixllm.evaluation.evaluate import EvaluationRun, collect_outputs
from mixllm.evaluation.fidelity import FidelityRow, budget_fidelity, fidelity_table
from mixllm.evaluation.intervals import bootstrap, paired_difference
from mixllm.evaluation.scoring import evaluate_scores
from mixllm.routing.router import MixLLMRouter

log = logging.getLogger(__name__)

QUALITY_TARGET_PCT = 97.25  # % of the reference LLM's quality ...
COST_TARGET_PCT = 25.0  # ... at no more than this % of its cost
APGR_TARGET = 0.65
FIDELITY_BUDGETS = (10.0, 25.0, 50.0)
PEERS = ("knn", "mlp", "mlp_prompt", "svm", "mf", "sw_ranking", "optllm", "tag_mean")
RUNTIME_LLM = "mistralai/mixtral-8x7b-chat"  # left out of training, added while serving
RUNTIME_LABEL = "added at runtime"  # ends the label of a candidate set with a runtime LLM
TAGS_SECTION = "quality-tags"  # nested in the quality section
IN_DOMAIN_SECTION = "quality-in-domain"  # nested: split, peers, intervals, budget fidelity
# further train/test splits on which budget fidelity is re-measured, so a reader can tell a
# calibration bias (the same sign on every split) from the sampling noise of one test split
FIDELITY_SPLIT_SEEDS = (1, 2, 3)
MESSPLUS_LLMS = ("llama-3.2-1b", "llama-3.1-8b", "llama-3.3-70b")


def quality_section(
    data_path: str,
    out_dir: str | Path,
    config: MixLLMConfig | None = None,
    limit: int | None = None,
    n_boot: int = 300,
    router: MixLLMRouter | None = None,
    peers: Sequence[str] = PEERS,
    runtime_llm: str = RUNTIME_LLM,
    split_seeds: Sequence[int] = FIDELITY_SPLIT_SEEDS,
) -> str:
    """Run every quality measurement on ``data_path`` (RouterBench) and return markdown.

    ``router``: one already trained on this split with the training-row prices (else
    trained here). ``peers``: the baselines compared (default: all, at their published
    configurations). ``runtime_llm``: the LLM left out of training and added while serving
    in the budget-fidelity table. ``split_seeds``: the further splits budget fidelity is
    re-measured on.
    """
    cfg = config or MixLLMConfig()
    data = _load_sample(data_path, limit)
    parts = [
        *_nested(
            IN_DOMAIN_SECTION,
            in_domain_part(
                data, cfg, Path(out_dir), n_boot, router, peers, runtime_llm, split_seeds, limit
            ),
        ),
        *out_of_domain(data, cfg, Path(out_dir), peers),
        *_nested(TAGS_SECTION, tag_choices(data, cfg, limit)),
    ]
    return "\n".join(parts)


def in_domain_part(
    data: RoutingData,
    cfg: MixLLMConfig,
    out_dir: Path,
    n_boot: int = 300,
    router: MixLLMRouter | None = None,
    peers: Sequence[str] = PEERS,
    runtime_llm: str = RUNTIME_LLM,
    split_seeds: Sequence[int] = FIDELITY_SPLIT_SEEDS,
    limit: int | None = None,
) -> list[str]:
    """Header, the in-domain peers table and budget fidelity (this split and
    ``split_seeds``): the part ``mixllm benchmark --only in-domain`` refreshes alone.
    ``limit``: ``data`` is a sample of that many queries, and the text says so."""
    train, test = split(data, cfg)
    prices = prices_from_rows(train, load_prices(cfg.prices_path))
    router = router or MixLLMRouter(cfg, prices=prices).fit(train)
    rows = fidelity_rows(router, cfg, prices, train, test, runtime_llm=runtime_llm)
    smoke = (
        [f"**Smoke run on a seeded sample of {len(data)} queries (`--limit`): not a result.**", ""]
        if limit
        else []
    )
    return [
        *header(len(train), len(test), cfg, n_boot),
        *smoke,
        *in_domain(router, train, test, out_dir, n_boot, peers),
        *fidelity_lines(rows, router, runtime_llm),
        *fidelity_across_splits(data, cfg, split_seeds, rows),
    ]


def _nested(name: str, lines: list[str]) -> list[str]:
    """``lines`` between the markers of section ``name`` (refreshed alone later)."""
    from mixllm.tools.sections import markers

    start, end = markers(name)
    return [start, *lines, end, ""]


def _load_sample(data_path: str, limit: int | None) -> RoutingData:
    """The data at ``data_path``, or a seeded sample of ``limit`` queries (smoke runs)."""
    data = load_data(data_path)
    if limit:
        rng = np.random.default_rng(0)
        data = data.subset(np.sort(rng.choice(len(data), min(limit, len(data)), replace=False)))
    return data


def _fold_config(cfg: MixLLMConfig) -> MixLLMConfig:
    """The config of a leave-one-task-out fold: the encoder is not fine-tuned (~15 min of CPU
    per fold) and nothing is cross-fitted (APGR scores the lambda sweep, which no budget
    calibration changes)."""
    return cfg.updated({"encoder": {"finetune": False}, "train": {"calibration_folds": 0}})


def header(n_train: int, n_test: int, cfg: MixLLMConfig, n_boot: int) -> list[str]:
    """The section's title and shared conventions."""
    return [
        "## Routing quality against the peers (quality benchmark)",
        "",
        f"Split {n_train} train / {n_test} held-out queries (stratified, seed "
        f"{cfg.train.seed}); prices derived from the training rows only; every router "
        "decides with the same cost estimate (MixLLM's: price x predicted output tokens). "
        f"Intervals: 95 % percentile bootstrap, {n_boot} resamples of the held-out queries "
        "within each task. Written by `mixllm benchmark` (or `mixllm benchmark --only "
        "quality`; the in-domain tables and budget fidelity alone: `--only in-domain`).",
        "",
    ]


def _scored(run: EvaluationRun):
    return evaluate_scores(
        run.test,
        run.outputs,
        reference_llm=run.reference_llm,
        tags=run.tags_test,
        calibrated=run.calibrated,
    )


def in_domain(
    router: MixLLMRouter,
    train: RoutingData,
    test: RoutingData,
    out_dir: Path,
    n_boot: int,
    peers: Sequence[str] = PEERS,
) -> list[str]:
    """Peers table with both AIQ conventions and quality at each budget, with intervals."""
    run = collect_outputs(router, train, test, progress=False, peers=list(peers))
    report = _scored(run)
    plot = report.plot_pareto(out_dir / "pareto_quality.png", title="Held-out split, all peers")
    ref_j = run.test.llms.index(report.reference_llm)
    names = ["mixllm", *[p for p in PEERS if p in run.outputs], "random", "oracle"]
    ints, reps = bootstrap(
        {n: run.outputs[n] for n in names},
        run.test.quality,
        run.test.cost,
        run.test.queries["source"].tolist(),
        ref_j,
        n_boot=n_boot,
    )
    lines = [
        "### In domain (held-out split)",
        "",
        "AIQ pooled (ours): hull over all held-out queries, averaged over the single-LLM "
        "cost range. AIQ per task (RouterBench's tables): the same per task with that "
        "task's range, then the mean. Q% @ x %: best quality on the router's curve at cost "
        f"<= x % of `{report.reference_llm}`'s, in % of its quality.",
        "",
        "| router | AIQ pooled | AIQ per task | Q% @10 % | Q% @25 % | Q% @50 % |",
        "|---|---|---|---|---|---|",
    ]
    for n in names:
        iv = ints[n]
        lines.append(
            f"| {n} | {iv['aiq_pooled'].fmt()} | {iv['aiq_per_task'].fmt()} | "
            f"{iv['q@10'].fmt('.1f')} | {iv['q@25'].fmt('.1f')} | {iv['q@50'].fmt('.1f')} |"
        )
    mix = report.routers["mixllm"]
    met = mix.quality_pct >= QUALITY_TARGET_PCT and mix.cost_pct <= COST_TARGET_PCT
    lines += ["", f"![Pareto curves, all peers]({plot.name})", "", "Targets:", ""]
    lines.append(
        f"- MixLLM at its calibrated default budget: {mix.quality_pct:.2f} % quality at "
        f"{mix.cost_pct:.2f} % cost (target >= {QUALITY_TARGET_PCT} % at <= "
        f"{COST_TARGET_PCT:g} %): **{'MET' if met else 'NOT MET'}**; best on its curve at "
        f"<= 25 %: {ints['mixllm']['q@25'].fmt('.2f')} %."
    )
    peers = [p for p in PEERS if p in ints]
    for key, label in (("aiq_pooled", "pooled"), ("aiq_per_task", "per task")):
        best = max(peers, key=lambda p: ints[p][key].value)
        d = paired_difference(reps, "mixllm", best, key)
        lead = d.lo > 0
        lines.append(
            f"- AIQ {label}: MixLLM - best peer (`{best}`) = {d.value:+.4f} "
            f"[{d.lo:+.4f}, {d.hi:+.4f}] -> highest beyond the interval: "
            f"**{'MET' if lead else 'NOT MET'}**."
        )
    return [*lines, ""]


def fidelity_rows(
    router: MixLLMRouter,
    cfg: MixLLMConfig,
    prices: PriceTable,
    train: RoutingData,
    test: RoutingData,
    live: MixLLMRouter | None = None,
    runtime_llm: str = RUNTIME_LLM,
) -> list[FidelityRow]:
    """Budget fidelity of every pair with the reference, all LLMs, and ``runtime_llm`` added
    live. ``live``: a router already trained on ``train`` without ``runtime_llm`` (else
    trained); no runtime rows when ``runtime_llm`` is not in the data or is the reference."""
    rows = budget_fidelity(router, test, _fidelity_sets(router), FIDELITY_BUDGETS)
    ref = router.reference_llm_
    if runtime_llm in train.llms and ref != runtime_llm:
        without = train.select_llms([m for m in train.llms if m != runtime_llm])
        live = live or MixLLMRouter(cfg, prices=prices).fit(without)
        spec = prices[runtime_llm]
        live.add_llm(runtime_llm, input_price=spec.input_price, output_price=spec.output_price)
        added = {
            f"all + {runtime_llm} {RUNTIME_LABEL}": None,
            f"{ref} + {runtime_llm} {RUNTIME_LABEL}": [ref, runtime_llm],
        }
        rows += budget_fidelity(live, test, added, FIDELITY_BUDGETS)
    return rows


def other_splits(
    data: RoutingData, cfg: MixLLMConfig, seeds: Sequence[int]
) -> Iterator[tuple[MixLLMConfig, RoutingData, RoutingData]]:
    """For each seed: the config with that train seed and its train / held-out split."""
    for seed in seeds:
        c = cfg.updated({"train": {"seed": int(seed)}})
        yield (c, *split(data, c))


def _fidelity_sets(router: MixLLMRouter) -> dict[str, list[str] | None]:
    ref = router.reference_llm_
    return {"all": None} | {f"{ref} + {m}": [ref, m] for m in router.llms_ if m != ref}


def fidelity_lines(
    rows: Sequence[FidelityRow], router: MixLLMRouter, runtime_llm: str
) -> list[str]:
    """The budget-fidelity table of one split (``fidelity_rows``) with its verdict."""
    runtime_note = f"`{runtime_llm}` not in the data: no runtime-added LLM case."
    if any(r.candidates.endswith(RUNTIME_LABEL) for r in rows):
        runtime_note = (
            f"The last rows: a router trained WITHOUT `{runtime_llm}`, which is then added "
            "at runtime with its price only (no outcome, no feedback): its spend is "
            "calibrated on predicted cost."
        )
    table = fidelity_table(rows, router.model.calibration.reference_cost)
    binding = [r for r in rows if r.binding]
    met = sum(r.met for r in binding)
    return [
        "### Budget fidelity (held-out queries)",
        "",
        "Budget in % of the reference LLM's mean cost on the calibration rows; spend = "
        "mean RECORDED cost of the choices on the held-out queries. Per-set lambda: "
        "re-calibrated for each candidate set; one global lambda: the single "
        "calibration with every trained LLM that routing used before. A budget above what "
        f"a set spends with cost ignored cannot bind (marked). {runtime_note}",
        "",
        table.to_markdown(index=False),
        "",
        f"Target (spend within 10 % of the budget): {met} of {len(binding)} binding cells "
        f"-> **{'MET' if met == len(binding) else 'NOT MET'}**"
        + ("" if met == len(binding) else " (the cells marked NO)")
        + ".",
        "",
    ]


def fidelity_across_splits(
    data: RoutingData,
    cfg: MixLLMConfig,
    seeds: Sequence[int],
    first: Sequence[FidelityRow] = (),
) -> list[str]:
    """Budget fidelity re-measured on the splits of ``seeds`` (router retrained on each,
    prices from its training rows; all LLMs and every pair with the reference), pooled with
    ``first`` (the main split's rows; runtime-added rows are not repeated).

    Per set and budget: the mean spend error over the splits and its range; a bias shows as
    the same sign on every split, test-split noise as a range around zero.
    """
    cells: dict[tuple[str, float], list[FidelityRow]] = {}

    def keep(rows: Sequence[FidelityRow]) -> None:
        for r in rows:
            if r.binding and not r.candidates.endswith(RUNTIME_LABEL):
                cells.setdefault((r.candidates, r.budget_pct), []).append(r)

    keep(first)
    seeds = [int(x) for x in dict.fromkeys(seeds) if not (first and x == cfg.train.seed)]
    n_splits = (1 if first else 0) + len(seeds)
    n_test = 0
    splits = other_splits(data, cfg, seeds)
    for c, train, test in tqdm(splits, desc="fidelity splits", total=len(seeds), disable=not seeds):
        n_test = len(test)
        prices = prices_from_rows(train, load_prices(c.prices_path))
        router = MixLLMRouter(c, prices=prices).fit(train)
        keep(budget_fidelity(router, test, _fidelity_sets(router), FIDELITY_BUDGETS))
    if not cells:
        return []
    labels = list(dict.fromkeys(label for label, _ in cells))
    seeds_txt = ", ".join(str(x) for x in ([cfg.train.seed] if first else []) + seeds)
    lines = [
        f"#### Budget fidelity across {n_splits} splits (seeds {seeds_txt})",
        "",
        "Each split retrains the router on its training rows and measures spend on its "
        f"{f'{n_test} ' if n_test else ''}held-out queries, as above (binding cells only; no "
        "runtime-added LLM). Cell: mean spend error over the splits [lowest, highest] "
        "(splits within 10 %). On ~660 held-out queries a 10 % budget is spent on a few "
        "dozen calls to the reference LLM, so one split's error carries ~10 % of sampling "
        "noise there; an error of the same sign on every split is a bias of the calibration.",
        "",
        "| candidates | " + " | ".join(f"{b:g} %" for b in FIDELITY_BUDGETS) + " |",
        "|---|" + "---:|" * len(FIDELITY_BUDGETS),
    ]
    for label in labels:
        row = []
        for b in FIDELITY_BUDGETS:
            e, ok = _errors(cells.get((label, b), []))
            row.append(
                "-"
                if e.size == 0
                else f"{100 * e.mean():+.1f} % [{100 * e.min():+.0f}, {100 * e.max():+.0f}] "
                f"({ok}/{e.size})"
            )
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    lines.append("")
    for b in FIDELITY_BUDGETS:
        e, ok = _errors([r for (_, bb), rs in cells.items() if bb == b for r in rs])
        if e.size:
            lines.append(
                f"- {b:g} % budget: mean error {100 * e.mean():+.1f} % over {e.size} cells "
                f"of {n_splits} splits; {ok} of them within 10 %."
            )
    return [*lines, ""]


def _errors(rows: Sequence[FidelityRow]) -> tuple[np.ndarray, int]:
    """The spend errors of ``rows`` and how many of them meet the target."""
    return np.array([r.error for r in rows]), sum(r.met for r in rows)


def out_of_domain(
    data: RoutingData,
    cfg: MixLLMConfig,
    out_dir: Path,
    peers: Sequence[str] = PEERS,
    on_fold: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """Train on two tasks, test on the third (each way): APGR of MixLLM and ``peers``.

    ``on_fold`` receives the markdown of the folds done so far after each fold.
    """
    tasks = list(dict.fromkeys(data.queries["source"].tolist()))
    ood_cfg = _fold_config(cfg)
    table: dict[str, dict[str, float]] = {}
    lines = ["### Out of domain: train on two tasks, test on the third", ""]
    if len(tasks) < 2:
        return [*lines, "Fewer than two tasks in the data: skipped.", ""]
    for held in tasks:
        src = data.queries["source"].to_numpy()
        train, test = data.subset(np.flatnonzero(src != held)), data.subset(src == held)
        prices = prices_from_rows(train, load_prices(cfg.prices_path))
        router = MixLLMRouter(ood_cfg, prices=prices).fit(train)
        run = collect_outputs(router, train, test, progress=False, peers=list(peers))
        report = _scored(run)
        for name, r in report.routers.items():
            if name == "mixllm" or name in peers:
                table.setdefault(name, {})[held] = _apgr(r.points, test)
        report.plot_pareto(out_dir / f"pareto_ood_{held}.png", title=f"Out of domain: {held}")
        if on_fold is not None:
            on_fold(lines + _ood_table(table, [t for t in tasks if t in table["mixllm"]]))
    plots = ", ".join(f"[{t}](pareto_ood_{t}.png)" for t in tasks)
    return [*lines, *_ood_table(table, tasks), f"Pareto plots per test task: {plots}.", ""]


def _apgr(points: np.ndarray, test: RoutingData) -> float:
    """APGR of ``points`` between the cheapest and the strongest LLM of ``test``."""
    q, c = np.nanmean(test.quality, axis=0), np.nanmean(test.cost, axis=0)
    weak, strong = int(np.argmin(c)), int(np.lexsort((c, -q))[0])
    return metrics.apgr(points, (c[weak], q[weak]), (c[strong], q[strong]))


def _fold_table_head(first: str, tasks: list[str]) -> list[str]:
    """Header of a table with one column per held-out task and their mean."""
    return [
        f"| {first} | " + " | ".join(f"test {t}" for t in tasks) + " | mean |",
        "|---|" + "---:|" * (len(tasks) + 1),
    ]


def _ood_table(table: dict[str, dict[str, float]], tasks: list[str]) -> list[str]:
    """The APGR table and verdicts over the folds ``tasks``."""
    lines = [
        "APGR against the straight line between the cheapest and the strongest LLM on the "
        "test task (0.5 = mixing those two at random, 1 = the strongest LLM's quality "
        "over the whole cost range). MixLLM without encoder fine-tuning in these folds "
        "(CPU time); its tags come from the taxonomy.",
        "",
        *_fold_table_head("router", tasks),
    ]
    for name, vals in table.items():
        row = [vals.get(t, float("nan")) for t in tasks]
        cells = " | ".join(f"{v:.3f}" for v in row)
        lines.append(f"| {name} | {cells} | {np.nanmean(row):.3f} |")
    mix = table.get("mixllm", {})
    verdicts = []
    for t in tasks:
        best_peer = max((table[p].get(t, -np.inf) for p in table if p != "mixllm"), default=0)
        ok = mix.get(t, -np.inf) >= APGR_TARGET and mix.get(t, -np.inf) > best_peer
        verdicts.append(f"test {t}: {'MET' if ok else 'NOT MET'}")
    lines += [
        "",
        f"Target (APGR >= {APGR_TARGET} and ahead of every peer): " + "; ".join(verdicts) + ".",
        "",
        "RouterBench -> MESS+: MESS+ answers come from "
        f"{', '.join(MESSPLUS_LLMS)}; RouterBench's 11 LLMs include none of them, so no "
        "LLM is shared and the transfer cannot be measured (not run).",
        "",
    ]
    return lines


TAG_CHOICES = {
    "taxonomy (keyword rules + similarity)": {"kind": "taxonomy"},
    "mined topics + taxonomy by meaning": {"kind": "mined", "taxonomy_prior": True},
    "mined topics only": {"kind": "mined", "taxonomy_prior": False},
}


def tag_choices(data: RoutingData, cfg: MixLLMConfig, limit: int | None = None) -> list[str]:
    """Leave-one-task-out APGR of MixLLM for each way of tagging (``TAG_CHOICES``);
    ``limit``: ``data`` is a sample of that many queries, and the text says so."""
    from mixllm.evaluation.evaluate import router_outputs

    src = data.queries["source"].to_numpy()
    tasks = list(dict.fromkeys(src.tolist()))
    sample = (
        f" **Smoke run on a seeded sample of {len(data)} queries (`--limit {limit}`): not a "
        "result.**"
        if limit
        else ""
    )
    lines = [
        "### Tags: leave one task out, per tagging choice",
        "",
        f"MixLLM alone, trained on two tasks and tested on the third ({len(data)} queries; "
        f"encoder `{cfg.encoder.backend}` at {cfg.encoder.max_seq_length} tokens, not "
        f"fine-tuned, as above); APGR as above.{sample}",
        "",
        *_fold_table_head("tagger", tasks),
    ]
    for label, tagger in TAG_CHOICES.items():
        row = []
        for held in tasks:
            train, test = data.subset(np.flatnonzero(src != held)), data.subset(src == held)
            c = _fold_config(cfg).updated({"tagger": tagger})
            prices = prices_from_rows(train, load_prices(cfg.prices_path))
            router = MixLLMRouter(c, prices=prices).fit(train)
            sweep, _ = router_outputs(router, test, budget_pcts=())
            row.append(_apgr(evaluate_scores(test, sweep).routers["mixllm"].points, test))
        cells = " | ".join(f"{v:.3f}" for v in row)
        lines.append(f"| {label} | {cells} | {np.mean(row):.3f} |")
    return [*lines, ""]


def write_tags_section(
    data_path: str, out: str | Path, config: MixLLMConfig | None = None, limit: int | None = None
) -> Path:
    """Re-run only the leave-one-task-out tagging comparison and rewrite its section of ``out``
    (``mixllm benchmark --only tags``); ``out`` must already hold the quality section."""
    cfg = config or MixLLMConfig()
    return _write_nested(
        out, TAGS_SECTION, lambda: tag_choices(_load_sample(data_path, limit), cfg, limit)
    )


def write_in_domain_section(
    data_path: str, out: str | Path, config: MixLLMConfig | None = None, limit: int | None = None
) -> Path:
    """Re-run only the in-domain peers table and budget fidelity and rewrite their section of
    ``out`` (``mixllm benchmark --only in-domain``); ``out`` must already hold the quality
    section."""
    cfg = config or MixLLMConfig()
    out = Path(out)
    return _write_nested(
        out,
        IN_DOMAIN_SECTION,
        lambda: in_domain_part(_load_sample(data_path, limit), cfg, out.parent, limit=limit),
    )


def _write_nested(out: str | Path, name: str, make: Callable[[], list[str]]) -> Path:
    """Rewrite section ``name`` (nested in the quality section of ``out``) with ``make()``;
    raises ``ConfigError`` before any work when ``out`` or either section is missing."""
    from mixllm.core.errors import ConfigError
    from mixllm.tools.sections import markers, upsert_section

    out = Path(out)
    if not out.exists():
        raise ConfigError(f"{out} does not exist: run `mixllm benchmark` first")
    text = out.read_text()
    missing = [m for m in (*markers("quality"), *markers(name)) if m not in text]
    if missing:
        raise ConfigError(
            f"{out} has no {missing[0]} marker, so no {name} section inside the quality "
            "section to refresh: run `mixllm benchmark --only quality` first (it writes the "
            "whole quality section)"
        )
    return upsert_section(out, name, "\n".join(make()))


def write_quality_section(
    data_path: str,
    out: str | Path,
    config: MixLLMConfig | None = None,
    limit: int | None = None,
    router: MixLLMRouter | None = None,
) -> Path:
    """Re-run the quality measurements and rewrite only their section of ``out``
    (``mixllm benchmark --only quality``)."""
    from mixllm.tools.sections import upsert_section

    out = Path(out)
    return upsert_section(
        out, "quality", quality_section(data_path, out.parent, config, limit, router=router)
    )
