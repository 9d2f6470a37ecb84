"""Quality-cost metrics of routers: Pareto front, convex hull, AIQ, quality at a cost.

The decision rule and its sweep over lambda live once in ``mixllm.routing.decision`` and
are re-exported here for the evaluation code.

Conventions: an operating point is ``(mean_cost, mean_quality)`` over a query set, a
curve is an ``(m, 2)`` array of such points, costs are dollars per query and qualities
are the RECORDED outcomes of the chosen LLMs (never the router's own predictions).
"""

from __future__ import annotations

import numpy as np

from mixllm.routing.decision import (  # noqa: F401  (re-exported: one implementation)
    choose,
    lambda_grid,
    operating_point,
    score,
    sweep,
)


def _clean(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    return pts[np.isfinite(pts).all(axis=1)]


def pareto_front(points: np.ndarray) -> np.ndarray:
    """Non-dominated points (lower cost, higher quality), sorted by cost, quality increasing."""
    pts = _clean(points)
    if len(pts) == 0:
        return pts
    # Cheapest first, and at equal cost the best quality first, so a single scan suffices.
    order = np.lexsort((-pts[:, 1], pts[:, 0]))
    front: list[np.ndarray] = []
    for p in pts[order]:
        if not front or p[1] > front[-1][1]:
            front.append(p)
    return np.array(front)


def nondecreasing_convex_hull(points: np.ndarray) -> np.ndarray:
    """Vertices of the upper convex hull of the Pareto front (RouterBench's router curve).

    Points on a hull segment are reachable by randomly mixing the two endpoint routers,
    which is why RouterBench scores this hull rather than the raw points.
    """
    front = pareto_front(points)
    if len(front) <= 2:
        return front
    hull: list[np.ndarray] = []
    for p in front:
        # Drop the last vertex while it lies on or below the chord from its predecessor to p.
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:
            hull.pop()
        hull.append(p)
    return np.array(hull)


def _cross(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))


def aiq(points: np.ndarray, c_lo: float, c_hi: float) -> float:
    """Average quality of the router's non-decreasing convex hull over costs [c_lo, c_hi].

    RouterBench's AIQ: the area under the hull divided by ``c_hi - c_lo``. Normalisation
    used here: within one evaluation every router gets the same range, ``c_lo``/``c_hi`` =
    the cheapest / most expensive single-LLM mean cost on the test set, so AIQs compare.
    Outside the router's own cost span: to the right of its most expensive hull point the
    hull is extended flat (spending more budget never hurts: the router just does not use
    it); to the left of its cheapest point the router cannot operate at all, so it scores 0
    on ``[c_lo, c_min)`` when ``c_min > c_lo`` (when ``c_min <= c_lo`` its own hull covers
    the whole range). Hence a single LLM at cost c scores ``q * (c_hi - c) / (c_hi - c_lo)``
    and the most expensive one scores 0. A router without finite points scores 0; for
    ``c_hi <= c_lo`` the hull's value at ``c_lo`` is returned.
    """
    hull = nondecreasing_convex_hull(points)
    if len(hull) == 0:
        return 0.0
    cs, qs = hull[:, 0], hull[:, 1]
    if c_hi <= c_lo:
        return float(np.interp(c_lo, cs, qs)) if cs[0] <= c_lo else 0.0
    start = max(c_lo, float(cs[0]))
    if start >= c_hi:
        return 0.0
    inner = cs[(cs > start) & (cs < c_hi)]
    xs = np.concatenate([[start], inner, [c_hi]])
    # np.interp holds the last value flat on the right, which is the documented extension.
    ys = np.interp(xs, cs, qs)
    area = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))
    return area / (c_hi - c_lo)


def quality_at_cost(points: np.ndarray, max_cost: float) -> float:
    """Best mean quality among the router's points with mean cost <= ``max_cost`` (NaN if none)."""
    pts = _clean(points)
    ok = pts[:, 0] <= max_cost
    return float(pts[ok, 1].max()) if ok.any() else float("nan")


def apgr(points: np.ndarray, weak: tuple[float, float], strong: tuple[float, float]) -> float:
    """Average performance gap recovered (RouteLLM) over the cost range weak -> strong.

    ``weak``/``strong`` are ``(mean_cost, mean_quality)`` of the cheapest and the
    strongest candidate. The router's hull is averaged over ``[c_weak, c_strong]``
    (``aiq``) and scaled so the straight line between the two LLMs (randomly mixing
    them) scores 0.5, the weak LLM alone 0 and a router at the strong LLM's quality over
    the whole range 1. NaN when the two qualities are equal.
    """
    (c_lo, q_lo), (c_hi, q_hi) = weak, strong
    if q_hi == q_lo:
        return float("nan")
    return (aiq(points, c_lo, c_hi) - q_lo) / (q_hi - q_lo)
