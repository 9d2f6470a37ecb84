"""Scoring router outputs on held-out data: curves, AIQ, quality at cost, per tag.

Points are always scored with the RECORDED quality and cost of the chosen LLMs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from mixllm.core.errors import DataError
from mixllm.core.types import RoutingData
from mixllm.evaluation import metrics
from mixllm.evaluation.protocol import (
    ChoiceOutput,
    RouterOutput,
    ScoreRouterOutput,
    choices_from_llm_names,
    scores_from_predictions,
)
from mixllm.evaluation.report import (
    COST_PCTS,
    REPORT_BUDGET_PCT,
    EvaluationReport,
    RouterResult,
)
from mixllm.routing.decision import nanmean
from mixllm.routing.outputs import Predictions


def _pick_reference(test: RoutingData, reference_llm: str | None) -> int:
    if reference_llm is not None:
        return test.llm_index(reference_llm)
    # per-LLM means of the recorded outcomes (0 for an LLM never observed)
    q, c = nanmean(test.quality, axis=0, empty=0.0), nanmean(test.cost, axis=0, empty=0.0)
    # Highest mean quality; the cheaper LLM wins an exact tie so the choice is stable.
    return int(np.lexsort((c, -q))[0])


def _as_choice(value: Any, test: RoutingData) -> ChoiceOutput:
    """A calibrated point as one ``(n,)`` row of valid LLM indices."""
    if isinstance(value, ChoiceOutput):
        out = value
    elif np.asarray(value).dtype.kind in "iu":
        out = ChoiceOutput(np.asarray(value, dtype=int))
    else:
        out = choices_from_llm_names(list(value), test.llms)
    ch = np.asarray(out.choices)
    if ch.shape != (len(test),) or ch.min(initial=0) < 0 or ch.max(initial=0) >= len(test.llms):
        raise DataError(f"a calibrated point needs {len(test)} LLM indices, got {ch.shape}")
    return out


def _curve(out: RouterOutput, test: RoutingData) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(m, 2)`` plus what reproduces each point: its lambda, or its choice row."""
    n, k = test.quality.shape
    if isinstance(out, ScoreRouterOutput):
        if np.shape(out.quality) != (n, k) or np.shape(out.cost) != (n, k):
            raise DataError(f"router output must be {(n, k)}, got {np.shape(out.quality)}")
        lams = out.lambdas if out.lambdas is not None else metrics.lambda_grid(out.cost)
        pts = metrics.sweep(out.quality, out.cost, test.quality, test.cost, lams, out.bonus)
        return pts, np.asarray(lams)
    ch = np.atleast_2d(np.asarray(out.choices, dtype=int))
    if ch.shape[1] != n or ch.min() < 0 or ch.max() >= k:
        raise DataError(f"choices must be (m, {n}) indices in [0, {k}), got {ch.shape}")
    pts = np.array([metrics.operating_point(row, test.quality, test.cost) for row in ch])
    return pts, ch


def _report_index(points: np.ndarray, budget: float) -> int:
    """Best point with cost <= budget (nearest from below), else the cheapest point."""
    costs = np.where(np.isfinite(points[:, 0]), points[:, 0], np.inf)
    ok = costs <= budget
    if not ok.any():
        return int(np.argmin(costs))
    best_cost = costs[ok].max()
    same = np.flatnonzero(costs == best_cost)
    return int(same[np.argmax(np.nan_to_num(points[same, 1], nan=-np.inf))])


def _evaluate_one(
    out: RouterOutput,
    test: RoutingData,
    ref: tuple[float, float],
    cost_range: tuple[float, float],
    calibrated: ChoiceOutput | None,
) -> RouterResult:
    ref_q, ref_c = ref
    points, source = _curve(out, test)
    if calibrated is not None:
        choices = np.asarray(calibrated.choices, dtype=int)
        how = "calibrated"
    else:
        i = _report_index(points, REPORT_BUDGET_PCT / 100 * ref_c)
        if isinstance(out, ScoreRouterOutput):
            choices = metrics.choose(out.quality, out.cost, source[i], out.bonus)
            how = f"sweep, cost <= {REPORT_BUDGET_PCT:g}%"
        elif out.report_index is not None:
            choices = source[out.report_index]
            how = "given point"
        else:
            choices = source[i]
            how = "single point" if len(points) == 1 else f"point, cost <= {REPORT_BUDGET_PCT:g}%"
    mean_c, mean_q = metrics.operating_point(choices, test.quality, test.cost)
    at = {str(p): 100 * metrics.quality_at_cost(points, p / 100 * ref_c) / ref_q for p in COST_PCTS}
    return RouterResult(
        points=points,
        aiq=metrics.aiq(points, *cost_range),
        quality_pct_at_cost_pct=at,
        mean_quality=mean_q,
        mean_cost=mean_c,
        quality_pct=100 * mean_q / ref_q,
        cost_pct=100 * mean_c / ref_c,
        kind="curve" if isinstance(out, ScoreRouterOutput) else out.kind,
        operating_point=how,
        choices=choices,
    )


def _per_tag(
    test: RoutingData, results: Mapping[str, RouterResult], tags: Sequence[Sequence[str]]
) -> tuple[dict[str, dict[str, tuple[float, float]]], dict[str, int]]:
    if len(tags) != len(test):
        raise DataError(f"tags has {len(tags)} entries for {len(test)} test queries")
    members: dict[str, list[int]] = {}
    for i, qtags in enumerate(tags):
        for t in dict.fromkeys(qtags):
            members.setdefault(t, []).append(i)
    table = {}
    for tag, idx in members.items():
        rows = np.array(idx)
        q, c = test.quality[rows], test.cost[rows]
        # Stored as (quality, cost), the order the per-tag table reads them.
        table[tag] = {
            name: metrics.operating_point(r.choices[rows], q, c)[::-1]
            for name, r in results.items()
        }
    return table, {t: len(v) for t, v in members.items()}


def evaluate_scores(
    test: RoutingData,
    routers: Mapping[str, RouterOutput | Predictions],
    reference_llm: str | None = None,
    tags: Sequence[Sequence[str]] | None = None,
    calibrated: Mapping[str, Any] | None = None,
) -> EvaluationReport:
    """Score every router on ``test`` with its recorded outcomes (see ``EvaluationReport``).

    ``calibrated`` maps a name to per-query choices (ChoiceOutput, int indices, LLM names
    or Decisions); under a router's own name it becomes that router's reported point,
    any other name is an extra marked point (e.g. ``"mixllm@10%"``).
    """
    if not routers:
        raise ValueError("evaluate_scores needs at least one router")
    ref_j = _pick_reference(test, reference_llm)
    ref_c, ref_q = metrics.operating_point(np.full(len(test), ref_j), test.quality, test.cost)
    llm_costs = nanmean(test.cost, axis=0, empty=0.0)
    cost_range = (float(llm_costs.min()), float(llm_costs.max()))
    cal = {name: _as_choice(v, test) for name, v in (calibrated or {}).items()}
    results = {}
    for name, out in routers.items():
        if not isinstance(out, ScoreRouterOutput | ChoiceOutput):
            if not isinstance(out, Predictions):
                raise TypeError(f"router {name!r}: unsupported output {type(out).__name__}")
            out = scores_from_predictions(out, test.llms)
        if isinstance(out, ChoiceOutput) and out.kind == "choice" and name in test.llms:
            out = replace(out, kind="single")
        results[name] = _evaluate_one(out, test, (ref_q, ref_c), cost_range, cal.get(name))
    per_tag, counts = _per_tag(test, results, tags) if tags is not None else ({}, {})
    return EvaluationReport(
        reference_llm=test.llms[ref_j],
        n_queries=len(test),
        cost_range=cost_range,
        reference_quality=ref_q,
        reference_cost=ref_c,
        routers=results,
        calibrated={
            name: metrics.operating_point(c.choices, test.quality, test.cost)
            for name, c in cal.items()
        },
        per_tag=per_tag,
        tag_counts=counts,
    )
