"""The result of one evaluation: per-router curves and numbers, as JSON, markdown or a plot."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mixllm.core.bounds import finite_or_none
from mixllm.evaluation import metrics

COST_PCTS = (10, 25, 50)
# Without a calibrated point, a sweep router is reported at its best point under this
# budget (% of the reference LLM's cost): MixLLM's default budget_pct.
REPORT_BUDGET_PCT = 25.0


@dataclass
class RouterResult:
    """One router's curve and summary numbers on the test set."""

    points: np.ndarray  # (m, 2): mean cost $, mean quality
    aiq: float
    quality_pct_at_cost_pct: dict[str, float]  # "10"/"25"/"50" -> % of ref quality (NaN: none)
    mean_quality: float
    mean_cost: float
    quality_pct: float
    cost_pct: float
    kind: str  # "curve" for a sweep, else the ChoiceOutput kind
    operating_point: str  # how mean_quality/mean_cost were picked
    choices: np.ndarray = field(repr=False)  # (n,) at the reported operating point


@dataclass
class EvaluationReport:
    """Per-router curves and numbers of one evaluation, with JSON/markdown/plot views.

    A router's ``mean_quality``/``mean_cost`` is its calibrated operating point when one
    was given under the router's own name, else the row a ``ChoiceOutput`` names in
    ``report_index`` (the oracle: its best-quality point), else (sweep) its best point
    with cost <= 25 % of the reference LLM's mean cost (the cheapest point if none is that
    cheap), else (one-point router) its single point. ``quality_pct``/``cost_pct`` are the
    same point in % of the reference LLM's mean quality/cost. Points, AIQ and quality at
    cost come from the router's own curve only: calibrated points never enter them.
    """

    reference_llm: str
    n_queries: int
    cost_range: tuple[float, float]
    reference_quality: float
    reference_cost: float
    routers: dict[str, RouterResult]
    calibrated: dict[str, tuple[float, float]] = field(default_factory=dict)  # (cost, quality)
    per_tag: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    tag_counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. which LLMs the routers were limited to

    def ranked(self) -> list[str]:
        """Router names by decreasing AIQ."""
        return sorted(self.routers, key=lambda r: -_finite_or(self.routers[r].aiq, -np.inf))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (plain floats, NaN -> None)."""
        routers = {
            name: {
                "aiq": finite_or_none(r.aiq),
                "quality_pct_at_cost_pct": {
                    k: finite_or_none(v) for k, v in r.quality_pct_at_cost_pct.items()
                },
                "mean_quality": finite_or_none(r.mean_quality),
                "mean_cost": finite_or_none(r.mean_cost),
                "quality_pct": finite_or_none(r.quality_pct),
                "cost_pct": finite_or_none(r.cost_pct),
            }
            for name, r in self.routers.items()
        }
        return {
            "reference_llm": self.reference_llm,
            "notes": list(self.notes),
            "n_queries": int(self.n_queries),
            "cost_range": [finite_or_none(self.cost_range[0]), finite_or_none(self.cost_range[1])],
            "routers": routers,
        }

    def to_markdown(self) -> str:
        """Markdown: routers sorted by AIQ, calibrated points, then the per-tag breakdown."""
        lines = [
            f"Reference LLM: `{self.reference_llm}` (quality {self.reference_quality:.3f}, "
            f"cost ${self.reference_cost:.6f}/query); {self.n_queries} test queries; "
            f"AIQ over ${self.cost_range[0]:.6f} to ${self.cost_range[1]:.6f}.",
            "",
            "| rank | router | AIQ | quality % | cost % | Q% @ cost<=10% | Q% @ cost<=25% "
            "| Q% @ cost<=50% | mean quality | mean cost $ | reported at |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        lines[1:1] = [f"Note: {n}" for n in self.notes] + ([""] if self.notes else [])
        for i, name in enumerate(self.ranked(), 1):
            r = self.routers[name]
            at = " | ".join(_fmt(r.quality_pct_at_cost_pct[str(p)], ".1f") for p in COST_PCTS)
            lines.append(
                f"| {i} | {name} | {_fmt(r.aiq, '.4f')} | {_fmt(r.quality_pct, '.1f')} | "
                f"{_fmt(r.cost_pct, '.1f')} | {at} | {_fmt(r.mean_quality, '.3f')} | "
                f"{_fmt(r.mean_cost, '.6f')} | {r.operating_point} |"
            )
        if self.calibrated:
            lines += ["", "Calibrated operating points:", ""]
            lines += ["| point | quality % | cost % |", "|---|---:|---:|"]
            for name, (c, q) in self.calibrated.items():
                qp, cp = self._pct(q, c)
                lines.append(f"| {name} | {_fmt(qp, '.1f')} | {_fmt(cp, '.1f')} |")
        if self.per_tag:
            lines += ["", *self._per_tag_markdown()]
        return "\n".join(lines) + "\n"

    def _pct(self, quality: float, cost: float) -> tuple[float, float]:
        return 100 * quality / self.reference_quality, 100 * cost / self.reference_cost

    def _per_tag_markdown(self) -> list[str]:
        names = self.ranked()
        out = [
            "Per tag, each router at its reported operating point: "
            "quality % (cost %) of the reference LLM on the whole test set.",
            "",
            "| tag | n | " + " | ".join(names) + " |",
            "|---|---:|" + "---:|" * len(names),
        ]
        for tag in sorted(self.per_tag):
            cells = []
            for name in names:
                q, c = self.per_tag[tag][name]
                qp, cp = self._pct(q, c)
                cells.append(f"{_fmt(qp, '.0f')} ({_fmt(cp, '.0f')})")
            out.append(f"| {tag} | {self.tag_counts[tag]} | " + " | ".join(cells) + " |")
        return out

    def plot_pareto(self, path: str | Path, title: str | None = None) -> Path:
        """PNG of every router's curve/point, cost as % of the reference LLM (log axis)."""
        from mixllm.evaluation.plots import plot_pareto

        curves, points, singles, oracle = {}, {}, {}, None
        for name, r in self.routers.items():
            here = (float(r.mean_cost), float(r.mean_quality))
            if r.kind == "curve" or len(r.points) > 1:
                curves[name] = (r.points, metrics.nondecreasing_convex_hull(r.points))
            if r.kind == "oracle":
                oracle = here
            elif r.kind == "single":
                singles[name] = here
            elif name not in curves:
                points[name] = here
        return plot_pareto(
            path,
            ref_cost=self.reference_cost,
            ref_llm=self.reference_llm,
            curves=curves,
            points=points,
            singles=singles,
            oracle=oracle,
            calibrated=self.calibrated,
            cost_pcts=COST_PCTS,
            title=title,
        )


def _finite_or(x: float, default: float) -> float:
    return x if math.isfinite(x) else default


def _fmt(x: float, spec: str) -> str:
    return format(x, spec) if x is not None and math.isfinite(x) else "-"
