"""The "Continual learning" section of docs/BENCHMARKS.md: tables, plots, honest reading."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mixllm.core.config import MixLLMConfig
from mixllm.data.loaders import load_data, load_messplus
from mixllm.tools.continual import EvalPoint, window_means
from mixllm.tools.continual_experiments import ContinualResults, ContinualSize, run_continual
from mixllm.tools.continual_plots import plot_new_llm, plot_offline_online, plot_ood

SECTION = "continual"
# Sec. 4.4 of the paper: gain of 70 % online over offline-only, at its budget.
PAPER_GAIN_PCT = {"graded": 2.22, "binary": 1.31}


def _qc(e: EvalPoint | None) -> str:
    return "-" if e is None else f"{e.quality_pct:.1f} ({e.cost_pct:.1f})"


def gain(res: ContinualResults, mode: str) -> tuple[float, float]:
    """(points, relative %) of held-out quality gained by the end of the stream over no
    feedback (the offline-only router), both in % of the reference LLM's quality."""
    final = res.offline_online.traces[mode].evals[-1].quality_pct
    base = res.offline_online.traces["none"].evals[-1].quality_pct
    return final - base, 100 * (final / base - 1)


def late_gain(res: ContinualResults, mode: str) -> float:
    """Points gained over no feedback, averaged over the second half of the checkpoints
    (less noisy than the last checkpoint alone)."""
    ev = res.offline_online.traces[mode].evals
    base = res.offline_online.traces["none"].evals
    half = len(ev) // 2
    return float(
        np.mean(
            [e.quality_pct - b.quality_pct for e, b in zip(ev[half:], base[half:], strict=True)]
        )
    )


def _offline_online_md(res: ContinualResults, plot: str) -> list[str]:
    exp, s = res.offline_online, res.setup
    modes = list(exp.traces)
    ref_q = np.nanmean(s.stream.quality[:, s.stream.llm_index(s.reference)])
    head = "| feedback received | " + " | ".join(f"{m}: Q% (C%)" for m in modes)
    lines = [head + " | streamed queries, graded: Q% |", "|---:|" + "---:|" * (len(modes) + 1)]
    stream_q = window_means(exp.traces["graded"].quality, exp.windows) / ref_q * 100
    for i, e in enumerate(exp.traces[modes[0]].evals):
        cells = " | ".join(_qc(exp.traces[m].evals[i]) for m in modes)
        prequential = "-" if i == 0 else f"{stream_q[i - 1]:.1f}"
        lines.append(f"| {e.n_feedback} | {cells} | {prequential} |")
    lines.append(
        f"| ceiling (offline on all {exp.n_offline + exp.n_stream}) | "
        + " | ".join(_qc(exp.ceiling) for _ in modes)
        + " | - |"
    )
    g_pts, g_rel = gain(res, "graded")
    b_pts, b_rel = gain(res, "binary")
    gap = exp.ceiling.quality_pct - exp.traces["none"].evals[-1].quality_pct
    return [
        "### 1. Offline -> online",
        "",
        f"Offline on {exp.n_offline} queries ({res.size.offline_frac:.0%} of the training "
        f"split), then {exp.n_stream} streamed; scored on the {len(s.test)} held-out queries "
        f"after each of {len(exp.windows)} windows, at the calibrated budget "
        f"({res.size.budget_pct:g} % of `{s.reference}`). Cells: quality % (cost %) of the "
        "reference; last column: the graded-feedback router's own choices on that window of "
        "the stream (prequential).",
        "",
        *lines,
        "",
        f"- Gain at the end of the stream over no feedback: graded **{g_pts:+.2f} points "
        f"({g_rel:+.2f} %)**, binary **{b_pts:+.2f} points ({b_rel:+.2f} %)**; the paper "
        f"reports +{PAPER_GAIN_PCT['graded']} % and +{PAPER_GAIN_PCT['binary']} % with 70 % "
        f"online. Averaged over the second half of the stream's checkpoints: graded "
        f"{late_gain(res, 'graded'):+.2f}, binary {late_gain(res, 'binary'):+.2f} points. The "
        f"offline-only router is {abs(gap):.2f} points {'below' if gap >= 0 else 'above'} the "
        "ceiling, which bounds what feedback on these tasks can add at this budget.",
        f"- A held-out mean over {len(s.test)} 0/1 outcomes has a standard error of about "
        f"{_se_points(s):.1f} points: gains smaller than that are not distinguishable from 0.",
        "- RouterBench's three tasks score 0/1, so a thumbs up is exactly quality 1: binary "
        "and graded feedback carry the same information here and their curves coincide.",
        "",
        f"![Offline to online]({plot})",
        "",
    ]


def _se_points(s) -> float:
    q = float(np.nanmean(s.test.quality))
    ref = float(np.nanmean(s.test.quality[:, s.test.llm_index(s.reference)]))
    return 100 * float(np.sqrt(q * (1 - q) / len(s.test))) / ref


def _new_llm_md(res: ContinualResults, plot: str) -> list[str]:
    exp = res.new_llm
    lines = [
        "| run | share after adding | share, last window | cumulative regret | "
        "regret after adding | stream quality after adding |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    a, (w0, w1) = exp.add_step, exp.windows[-1]
    for label, tr in exp.traces.items():
        after = tr.chosen[a:]
        share = np.mean([c == exp.llm for c in after]) if after else float("nan")
        last = np.mean([c == exp.llm for c in tr.chosen[w0:w1]])
        lines.append(
            f"| {label} | {100 * share:.1f} % | {100 * last:.1f} % | {tr.cum_regret[-1]:.1f} | "
            f"{tr.regret[a:].sum():.1f} | {np.nanmean(tr.quality[a:]):.3f} |"
        )
    return [
        "### 2. A new LLM",
        "",
        f"`{exp.llm}` (the LLM the full router uses most at the budget, the reference aside) "
        f"is left out of offline training and added with `add_llm` (list prices, default "
        f"prior quality) after {exp.add_step} of {len(res.setup.stream)} streamed queries; "
        f"graded feedback throughout. Regret per query = best (quality - lambda x cost) among "
        "the LLMs available at that step, scored with recorded outcomes, minus that of the "
        "choice (lambda: the decision's own willingness to pay).",
        "",
        *lines,
        "",
        _new_llm_reading(res),
        "",
        f"![New LLM]({plot})",
        "",
    ]


def _new_llm_reading(res: ContinualResults) -> str:
    exp = res.new_llm
    a = exp.add_step

    def share(label: str) -> float:
        return 100 * float(np.mean([c == exp.llm for c in exp.traces[label].chosen[a:]]))

    with_bonus = f"added, alpha = {exp.alpha:g}"
    return (
        f"Reading: after it joins, `{exp.llm.split('/')[-1]}` gets {share(with_bonus):.1f} % of "
        f"the traffic with the configured bonus (alpha = {exp.alpha:g}) and "
        f"{share('added, alpha = 0'):.1f} % without it. Regret is against the per-query best "
        "in hindsight on 0/1 outcomes, so it grows for every router; what matters is the "
        "slope after the add step."
    )


def _ood_md(res: ContinualResults, plot: str) -> list[str]:
    cps = res.size.checkpoints
    head = "| setting | offline queries | streamed | before | " + " | ".join(
        f"after {c}" for c in cps
    )
    lines = [head + " | in-domain |", "|---|---:|---:|---:|" + "---:|" * (len(cps) + 1)]
    for r in res.ood:
        after = " | ".join(
            _qc(r.after(c)) + (f" (end, {r.n_stream})" if r.n_stream < c else "") for c in cps
        )
        lines.append(
            f"| {r.name} | {r.n_offline} | {r.n_stream} | {_qc(r.after(0))} | {after} | "
            f"{_qc(r.in_domain)} |"
        )
    mp = res.messplus_info
    mp_text = (
        f"MESS+: {mp['n_train']} train / {mp['n_test']} held-out of {res.size.messplus_n} "
        f"sampled queries; reference `{mp['reference']}`; budget ${mp['budget_usd']:.3g} per "
        f"query ({res.size.budget_pct:g} % of the reference's mean cost) for both routers. "
        "MESS+ has no outcome for any RouterBench LLM and RouterBench none for the Llamas, so "
        "the meaningful transfer is the deployment one: the RouterBench router keeps its "
        "encoder, tagger and calibration, the three Llamas are added with `add_llm`, the "
        "RouterBench LLMs removed, and all it knows about the Llamas comes from the stream. "
        "The in-domain router is trained on MESS+'s own training split. The dollar budget "
        "maps to a willingness to pay re-calibrated for the active candidate set (the Llamas' "
        "predicted costs on the kept calibration rows), so the budget follows the new "
        "candidates; the quality side is learned only from the stream "
        "(held-out shares at the end: "
        + "; ".join(_shares(r) for r in res.ood if r.name.startswith("MESS+"))
        + "). The no-constraint row isolates what the feedback teaches about quality."
        if mp
        else "MESS+ file not found: its row was skipped."
    )
    return [
        "### 3. Out of domain",
        "",
        "RouterBench: trained on the training rows of two tasks, the third task's training rows "
        "streamed with graded feedback, scored on that task's held-out rows; in-domain = the "
        "router trained on all three tasks' training rows. Cells: quality % (cost %) of the "
        'reference on that task; "(end, n)": the stream had only n queries.',
        "",
        *lines,
        "",
        mp_text,
        "",
        f"![Out of domain]({plot})",
        "",
    ]


def _shares(r) -> str:
    end = r.evals[-1].shares if r.evals else {}
    top = ", ".join(f"{m.split('/')[-1]} {100 * v:.0f} %" for m, v in sorted(end.items()))
    return f"{r.name.split(', ')[-1]}: {top}"


def _removal_md(res: ContinualResults) -> list[str]:
    r = res.removal
    c = r.counts
    ok = c["after"] == 0 and r.held_out_after == 0
    return [
        "### 4. A removed LLM",
        "",
        f"`{r.llm}` (the offline router's most used LLM) removed with `remove_llm` after "
        f"{r.at} streamed queries: chosen {c['before']} times before, **{c['after']} times in "
        f"the {c['steps_after']} queries after**, and for {r.held_out_after} of the "
        f"{len(res.setup.test)} held-out queries by the final router -> "
        f"{'never chosen after removal' if ok else 'STILL CHOSEN: a bug'}.",
        "",
    ]


def render_continual(res: ContinualResults, plots: dict[str, str], seconds: float) -> str:
    """The section's markdown; ``plots`` maps offline_online / new_llm / ood to file names."""
    s = res.setup
    return "\n".join(
        [
            "## Continual learning",
            "",
            f"Generated by `mixllm benchmark --only continual` in {seconds / 60:.1f} min. "
            f"Paper setting (Sec. 4.4): {len(s.train)} training / {len(s.test)} held-out "
            "queries (the benchmark's split); queries arrive in a seeded random order "
            "(the data has no timestamps and its files are sorted by task); each routed query "
            "returns the chosen LLM's recorded outcome as feedback to `update` (graded: its "
            "quality; binary: thumbs up when quality >= 0.5; both with the recorded cost). "
            "Every router shares one encoder, not fine-tuned (`encoder.finetune=False`, "
            "the `mixllm-no-finetune` ablation above), so each query is embedded once.",
            "",
            *_offline_online_md(res, plots["offline_online"]),
            *_new_llm_md(res, plots["new_llm"]),
            *_ood_md(res, plots["ood"]),
            *_removal_md(res),
        ]
    )


def continual_section(
    data_path: str,
    out: str | Path,
    messplus_path: str | None,
    config: MixLLMConfig,
    size: ContinualSize,
) -> tuple[str, ContinualResults]:
    """Run the experiments, write the plots next to ``out`` and its JSON; return the markdown."""
    t0 = time.perf_counter()
    out = Path(out)
    mp = None
    if messplus_path and Path(messplus_path).exists():
        from mixllm.tools.benchmark import _sample

        mp = _sample(load_messplus(messplus_path), size.messplus_n)
    res = run_continual(load_data(data_path), config, size, mp)
    plots = {
        "offline_online": plot_offline_online(
            out.with_name("continual_offline_online.png"),
            res.offline_online,
            res.setup.reference,
        ).name,
        "new_llm": plot_new_llm(out.with_name("continual_new_llm.png"), res.new_llm).name,
        "ood": plot_ood(out.with_name("continual_ood.png"), res.ood, res.size.checkpoints).name,
    }
    out.with_name("BENCHMARKS.continual.json").write_text(json.dumps(to_json(res), indent=2))
    return render_continual(res, plots, time.perf_counter() - t0), res


def to_json(res: ContinualResults) -> dict:
    """The measured numbers, machine-readable."""
    exp1, exp2 = res.offline_online, res.new_llm
    return {
        "size": asdict(res.size),
        "reference": res.setup.reference,
        "offline_online": {
            "ceiling": asdict(exp1.ceiling),
            "evals": {m: [asdict(e) for e in t.evals] for m, t in exp1.traces.items()},
            "gain_points": {m: gain(res, m)[0] for m in ("graded", "binary")},
        },
        "new_llm": {
            "llm": exp2.llm,
            "add_step": exp2.add_step,
            "cum_regret": {k: float(t.cum_regret[-1]) for k, t in exp2.traces.items()},
            "share_after_add": {
                k: float(np.mean([c == exp2.llm for c in t.chosen[exp2.add_step :]]))
                for k, t in exp2.traces.items()
            },
        },
        "ood": [
            {
                "name": r.name,
                "evals": [asdict(e) for e in r.evals],
                "in_domain": asdict(r.in_domain),
            }
            for r in res.ood
        ],
        "removal": asdict(res.removal),
    }
