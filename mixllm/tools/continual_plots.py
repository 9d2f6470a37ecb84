"""PNG plots of the continual-learning experiments (same conventions as evaluation.plots).

matplotlib is imported inside each function and drawn on an explicit Agg canvas, so
importing this module changes no global backend and needs no display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mixllm.tools.continual_experiments import NewLLM, OfflineOnline, OODResult


def _figure(width: float = 11, height: float = 4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def plot_offline_online(path: str | Path, res: OfflineOnline, reference: str) -> Path:
    """Held-out quality % and cost % of ``reference`` after each window, per feedback mode.

    x: feedback received (stream steps); the dashed line is the router trained offline on
    the offline and the streamed queries together (the ceiling).
    """
    fig = _figure()
    axes = [fig.add_subplot(1, 2, i) for i in (1, 2)]
    # graded and binary coincide on 0/1 data: different line styles keep both visible
    looks = {"graded": ("-", "o", 6), "binary": ("--", "x", 5), "none": (":", ".", 3)}
    for i, (mode, trace) in enumerate(res.traces.items()):
        x = [e.n_feedback for e in trace.evals]
        ls, marker, ms = looks.get(mode, ("-", "o", 3))
        label = "no feedback" if mode == "none" else f"{mode} feedback"
        style = {"color": f"C{i}", "ls": ls, "marker": marker, "ms": ms, "label": label}
        axes[0].plot(x, [e.quality_pct for e in trace.evals], **style)
        axes[1].plot(x, [e.cost_pct for e in trace.evals], **style)
    top = res.ceiling
    for ax, y, what in ((axes[0], top.quality_pct, "quality"), (axes[1], top.cost_pct, "cost")):
        ax.axhline(y, color="black", ls="--", lw=1, label="trained offline on all (ceiling)")
        ax.set_xlabel("feedback received (streamed queries)")
        ax.set_ylabel(f"held-out {what}, % of {reference}")
        ax.grid(True, alpha=0.2)
    axes[0].set_title("Quality at the calibrated budget")
    axes[1].set_title("Cost at the calibrated budget")
    axes[0].legend(fontsize=7, loc="best")
    fig.subplots_adjust(left=0.07, right=0.98, wspace=0.25, bottom=0.13)
    return _save(fig, path)


def plot_new_llm(path: str | Path, res: NewLLM) -> Path:
    """The new LLM's share of each window's traffic, and the cumulative regret per step
    relative to the run in which it never joins (below 0: adding it paid off)."""
    fig = _figure()
    ax_share, ax_regret = (fig.add_subplot(1, 2, i) for i in (1, 2))
    mid = np.array([(a + b) / 2 for a, b in res.windows])
    # every run's regret grows ~linearly (0/1 outcomes vs hindsight); the difference shows
    # what the new LLM and the bonus changed
    base = res.traces.get("never added")
    for i, (label, trace) in enumerate(res.traces.items()):
        share = [np.mean([c == res.llm for c in trace.chosen[a:b]]) for a, b in res.windows]
        ax_share.plot(mid, 100 * np.array(share), marker="o", ms=3, color=f"C{i}", label=label)
        rel = trace.cum_regret - (0 if base is None else base.cum_regret)
        ax_regret.plot(np.arange(1, len(rel) + 1), rel, color=f"C{i}", label=label)
    for ax in (ax_share, ax_regret):
        ax.axvline(res.add_step, color="0.3", ls=":", lw=1)
        ax.set_xlabel("stream step (query)")
        ax.grid(True, alpha=0.2)
    name = res.llm.split("/")[-1]
    ax_share.set_ylabel(f"% of window routed to {name}")
    ax_share.set_title(f"{name} added at step {res.add_step}")
    ax_regret.set_ylabel("cumulative regret - never-added run's (quality points)")
    ax_regret.set_title("Regret vs the per-query best, relative to never adding it")
    ax_regret.legend(fontsize=7, loc="upper left")
    fig.subplots_adjust(left=0.07, right=0.98, wspace=0.25, bottom=0.13)
    return _save(fig, path)


def plot_ood(path: str | Path, results: list[OODResult], checkpoints: tuple[int, ...]) -> Path:
    """Held-out quality % per out-of-domain setting: before/after feedback vs in-domain.

    "after n" bars of a stream shorter than n show its end.
    """
    fig = _figure(11, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    bars = [0, *checkpoints, None]  # None: the in-domain router
    width = 0.8 / len(bars)
    for b, n in enumerate(bars):
        points = [r.in_domain if n is None else r.after(n) for r in results]
        ys = [np.nan if p is None else p.quality_pct for p in points]
        x = np.arange(len(results)) + (b - (len(bars) - 1) / 2) * width
        label = "in-domain" if n is None else ("before feedback" if n == 0 else f"after {n}")
        ax.bar(x, ys, width, color="0.3" if n is None else f"C{b}", label=label)
    names = [r.name.replace(", ", ",\n") for r in results]
    ax.set_xticks(np.arange(len(results)), names, fontsize=7)
    ax.set_ylabel("held-out quality, % of the reference LLM")
    ax.set_title("Out of domain: quality at the budget before and after streamed feedback")
    lo = np.nanmin([e.quality_pct for r in results for e in [*r.evals, r.in_domain]])
    ax.set_ylim(max(0.0, lo - 10), None)
    ax.grid(True, axis="y", alpha=0.2)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.subplots_adjust(left=0.07, right=0.85, bottom=0.15)
    return _save(fig, path)
