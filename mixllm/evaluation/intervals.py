"""Bootstrap confidence intervals on AIQ (two conventions) and on quality at a budget.

Two AIQ conventions are reported side by side:

- ``aiq_pooled`` (ours): the router's hull over ALL test queries, averaged over the cost
  range of the single LLMs on those queries (``metrics.aiq``).
- ``aiq_per_task`` (RouterBench's published tables): the same on each task's queries with
  that task's own single-LLM cost range, then the mean over tasks.

Intervals resample the test queries with replacement within each task (so every task
keeps its size), keeping every router's per-query choices fixed (a choice depends on its
own query only), so one replicate re-scores all routers on the same resample: paired
differences between routers come from the same replicates.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mixllm.evaluation import metrics
from mixllm.evaluation.protocol import ChoiceOutput, RouterOutput, ScoreRouterOutput

BUDGET_PCTS = (10, 25, 50)


def choice_rows(out: RouterOutput) -> np.ndarray:
    """Per-query choices ``(m, n)``: one row per lambda of a sweep, or the given rows."""
    if isinstance(out, ScoreRouterOutput):
        lams = out.lambdas if out.lambdas is not None else metrics.lambda_grid(out.cost)
        return np.atleast_2d(metrics.choose(out.quality, out.cost, lams, out.bonus))
    assert isinstance(out, ChoiceOutput)
    return np.atleast_2d(np.asarray(out.choices, dtype=int))


@dataclass
class Picked:
    """Recorded quality and cost ``(m, n)`` of one router's choices at each of its points."""

    quality: np.ndarray
    cost: np.ndarray

    @classmethod
    def of(cls, choices: np.ndarray, quality: np.ndarray, cost: np.ndarray) -> Picked:
        """Gather the recorded outcomes of ``choices`` (m, n) from (n, k) matrices."""
        rows = np.arange(choices.shape[1])[None, :]
        return cls(quality[rows, choices], cost[rows, choices])

    def points(self, idx: np.ndarray) -> np.ndarray:
        """``(m, 2)`` mean (cost, quality) over the queries ``idx`` (repeats allowed)."""
        with np.errstate(invalid="ignore"):
            return np.column_stack(
                [np.nanmean(self.cost[:, idx], axis=1), np.nanmean(self.quality[:, idx], axis=1)]
            )


def _llm_means(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.nanmean(values[idx], axis=0)


def scores(
    picked: Picked,
    quality: np.ndarray,
    cost: np.ndarray,
    task_idx: Sequence[np.ndarray],
    ref_j: int,
) -> dict[str, float]:
    """AIQ in both conventions and quality (% of the reference LLM's) at each budget.

    ``task_idx``: the (resampled) query indices of each task; their union is the test set.
    """
    idx = np.concatenate(task_idx)
    costs = _llm_means(cost, idx)
    pts = picked.points(idx)
    out = {"aiq_pooled": metrics.aiq(pts, float(np.nanmin(costs)), float(np.nanmax(costs)))}
    per_task = []
    for t in task_idx:
        c = _llm_means(cost, t)
        per_task.append(metrics.aiq(picked.points(t), float(np.nanmin(c)), float(np.nanmax(c))))
    out["aiq_per_task"] = float(np.mean(per_task))
    ref_c, ref_q = _llm_means(cost, idx)[ref_j], _llm_means(quality, idx)[ref_j]
    for pct in BUDGET_PCTS:
        q = metrics.quality_at_cost(pts, pct / 100 * ref_c)
        out[f"q@{pct}"] = 100 * q / ref_q
    return out


@dataclass
class Interval:
    """A point estimate on the full test set and its bootstrap percentile interval."""

    value: float
    lo: float
    hi: float

    def fmt(self, spec: str = ".4f") -> str:
        """``value [lo, hi]``; ``-`` for NaN."""
        if not np.isfinite(self.value):
            return "-"
        return f"{self.value:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}]"


def bootstrap(
    outputs: Mapping[str, RouterOutput],
    quality: np.ndarray,
    cost: np.ndarray,
    tasks: Sequence[str],
    ref_j: int,
    n_boot: int = 300,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[dict[str, dict[str, Interval]], dict[str, np.ndarray]]:
    """Intervals per router and metric, and the raw replicates ``{name: (n_boot, metrics)}``.

    ``quality``/``cost`` (n, k) are the recorded outcomes of the test queries, ``tasks``
    (n,) their task names, ``ref_j`` the reference LLM's column.
    """
    tasks = np.asarray(tasks)
    groups = [np.flatnonzero(tasks == t) for t in dict.fromkeys(tasks.tolist())]
    picked = {name: Picked.of(choice_rows(o), quality, cost) for name, o in outputs.items()}
    full = {name: scores(p, quality, cost, groups, ref_j) for name, p in picked.items()}
    keys = list(next(iter(full.values())))
    rng = np.random.default_rng(seed)
    reps = {name: np.empty((n_boot, len(keys))) for name in picked}
    for b in range(n_boot):
        sample = [g[rng.integers(0, len(g), len(g))] for g in groups]
        for name, p in picked.items():
            s = scores(p, quality, cost, sample, ref_j)
            reps[name][b] = [s[k] for k in keys]
    tail = 100 * (1 - level) / 2
    out = {}
    for name in picked:
        with warnings.catch_warnings():  # a budget below a router's cheapest point: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanpercentile(reps[name], [tail, 100 - tail], axis=0)
        out[name] = {k: Interval(full[name][k], lo[i], hi[i]) for i, k in enumerate(keys)}
    return out, {"keys": np.array(keys), **reps}


def paired_difference(
    reps: Mapping[str, np.ndarray], a: str, b: str, key: str, level: float = 0.95
) -> Interval:
    """``a - b`` on metric ``key`` over the same replicates: median and percentile interval."""
    i = list(reps["keys"]).index(key)
    d = reps[a][:, i] - reps[b][:, i]
    tail = 100 * (1 - level) / 2
    lo, hi = np.nanpercentile(d, [tail, 100 - tail])
    return Interval(float(np.nanmedian(d)), float(lo), float(hi))
