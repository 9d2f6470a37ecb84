"""Quality-cost (Pareto) plot of routers, written as a PNG.

matplotlib is imported inside the function and drawn on an explicit Agg canvas, so
importing this module changes no global backend and needs no display.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

Point = tuple[float, float]  # (mean cost $, mean quality)


def _pct(cost: np.ndarray | float, ref_cost: float) -> np.ndarray:
    # A log axis cannot show 0: free operating points sit at a tiny positive percentage.
    return np.maximum(100.0 * np.asarray(cost, dtype=float) / ref_cost, 1e-3)


def _dense_hull(hull: np.ndarray, per_segment: int = 25) -> np.ndarray:
    """Points along the hull's straight (linear-cost) segments, so it bends right on a log axis."""
    if len(hull) < 2:
        return hull
    t = np.linspace(0.0, 1.0, per_segment)[:, None]
    segs = [a + t * (b - a) for a, b in itertools.pairwise(hull)]
    return np.vstack(segs)


def plot_pareto(
    path: str | Path,
    *,
    ref_cost: float,
    ref_llm: str,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    points: Mapping[str, Point] | None = None,
    singles: Mapping[str, Point] | None = None,
    oracle: Point | None = None,
    calibrated: Mapping[str, Point] | None = None,
    cost_pcts: Sequence[float] = (10, 25, 50),
    title: str | None = None,
) -> Path:
    """Write the quality vs cost (% of ``ref_llm``'s cost, log axis) plot to ``path``.

    ``curves`` maps a router to ``(raw_points, hull_vertices)``; ``points`` are other
    one-point routers (e.g. random); ``singles`` the single LLMs; ``calibrated`` the
    operating points a router picked itself for a budget.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, (name, (raw, hull)) in enumerate((curves or {}).items()):
        # Ten colours, then a new line style, so up to 40 routers stay distinguishable.
        color, style = f"C{i % 10}", ("-", "--", "-.", ":")[(i // 10) % 4]
        if len(raw):
            ax.scatter(_pct(raw[:, 0], ref_cost), raw[:, 1], s=6, alpha=0.25, color=color)
        if len(hull):
            dense = _dense_hull(hull)
            x, y = _pct(dense[:, 0], ref_cost), dense[:, 1]
            ax.plot(x, y, color=color, ls=style, lw=1.6, label=name)
    for name, (c, q) in (points or {}).items():
        ax.scatter(_pct(c, ref_cost), q, marker="D", s=40, color="0.4", zorder=3)
        ax.annotate(name, (_pct(c, ref_cost), q), fontsize=7, **_offset())
    for name, (c, q) in (singles or {}).items():
        bold = name == ref_llm
        ax.scatter(_pct(c, ref_cost), q, marker="s", s=30, color="black" if bold else "0.55")
        ax.annotate(name.split("/")[-1], (_pct(c, ref_cost), q), fontsize=6, **_offset())
    if oracle is not None:
        ax.scatter(_pct(oracle[0], ref_cost), oracle[1], marker="*", s=160, color="gold",
                   edgecolor="black", zorder=4, label="oracle (best quality)")  # fmt: skip
    for name, (c, q) in (calibrated or {}).items():
        ax.scatter(_pct(c, ref_cost), q, marker="X", s=90, color="crimson",
                   edgecolor="black", zorder=5)  # fmt: skip
        ax.annotate(name, (_pct(c, ref_cost), q), fontsize=7, color="crimson", **_offset())
    for p in cost_pcts:
        ax.axvline(p, color="0.3", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel(f"mean cost per query, % of {ref_llm}")
    ax.set_ylabel("mean recorded quality")
    ax.set_title(title or "Quality vs cost (hull = non-decreasing convex hull)")
    ax.grid(True, which="both", alpha=0.2)
    # Outside the axes: inside, it would hide the single-LLM markers in the lower right.
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.subplots_adjust(left=0.08, right=0.8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _offset() -> dict[str, object]:
    return {"textcoords": "offset points", "xytext": (4, 3)}
