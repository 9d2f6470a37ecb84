"""Quality-cost metrics of routers: lambda sweeps, Pareto front, convex hull, AIQ.

Conventions: an operating point is ``(mean_cost, mean_quality)`` over a query set, a
curve is an ``(m, 2)`` array of such points, costs are dollars per query and qualities
are the RECORDED outcomes of the chosen LLMs (never the router's own predictions).
"""

from __future__ import annotations

import numpy as np

# Scores within this distance of the best count as ties (broken by predicted cost):
# predictors often return exactly equal qualities (KNN means, tag means) and float
# rounding of ``q - lam * c`` must not turn such ties into arbitrary picks.
_TIE_EPS = 1e-12
# Upper bound on the (lambdas x queries x llms) block that ``sweep`` materialises at once.
_SWEEP_BLOCK = 4_000_000


def choose(
    q_hat: np.ndarray,
    c_hat: np.ndarray,
    lam: float | np.ndarray,
    bonus: np.ndarray | None = None,
) -> np.ndarray:
    """Per-query argmax of ``q_hat + bonus - lam * c_hat``; ties go to the cheaper LLM.

    ``lam`` a scalar gives ``(n,)`` choices, an array of ``m`` lambdas gives ``(m, n)``.
    NaN scores (unknown prediction) never win unless a whole row is NaN.
    """
    q = np.asarray(q_hat, dtype=float)
    c = np.asarray(c_hat, dtype=float)
    if q.shape != c.shape or q.ndim != 2:
        raise ValueError(f"q_hat {q.shape} and c_hat {c.shape} must be the same (n, k) shape")
    if bonus is not None:
        q = q + np.asarray(bonus, dtype=float)
    lam_arr = np.asarray(lam, dtype=float)
    scalar = lam_arr.ndim == 0
    lams = lam_arr.reshape(-1, 1, 1)
    score = q[None] - lams * c[None]
    score = np.where(np.isnan(score), -np.inf, score)
    best = score.max(axis=2, keepdims=True)
    tied = score >= best - _TIE_EPS
    c_tie = np.where(tied, np.nan_to_num(c, nan=np.inf)[None], np.inf)
    out = np.argmin(c_tie, axis=2)
    return out[0] if scalar else out


def operating_point(
    choices: np.ndarray, quality: np.ndarray, cost: np.ndarray
) -> tuple[float, float]:
    """Mean recorded ``(cost, quality)`` of the chosen LLMs; unobserved outcomes are skipped."""
    choices = np.asarray(choices, dtype=int)
    rows = np.arange(len(choices))
    return _nanmean(cost[rows, choices]), _nanmean(quality[rows, choices])


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    ok = ~np.isnan(x)
    return float(x[ok].mean()) if ok.any() else float("nan")


def sweep(
    q_hat: np.ndarray,
    c_hat: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    lambdas: np.ndarray,
    bonus: np.ndarray | None = None,
) -> np.ndarray:
    """Operating points ``(m, 2)`` of a score-based router, one per lambda."""
    lambdas = np.atleast_1d(np.asarray(lambdas, dtype=float))
    n, k = np.shape(q_hat)
    rows = np.arange(n)
    qual = np.asarray(quality, dtype=float)
    cst = np.asarray(cost, dtype=float)
    out = np.empty((len(lambdas), 2))
    # Blocks over lambdas bound memory to _SWEEP_BLOCK floats on large test sets.
    step = max(1, _SWEEP_BLOCK // max(1, n * k))
    for start in range(0, len(lambdas), step):
        ch = choose(q_hat, c_hat, lambdas[start : start + step], bonus)
        picked_q = qual[rows[None, :], ch]
        picked_c = cst[rows[None, :], ch]
        with np.errstate(invalid="ignore"):
            out[start : start + step, 0] = _row_nanmean(picked_c)
            out[start : start + step, 1] = _row_nanmean(picked_q)
    return out


def _row_nanmean(x: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(x)
    counts = ok.sum(axis=1)
    sums = np.where(ok, x, 0.0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def lambda_grid(c_ref: float | np.ndarray, size: int = 60) -> np.ndarray:
    """``size`` lambdas: 0 then log-spaced from "cost is noise" to "cheapest always wins".

    With a scalar reference cost (e.g. the reference LLM's mean cost) the log part spans
    ``lambda * c_ref`` in [1e-3, 1e5]: at the low end cost moves a score by 0.001 quality
    points, at the high end any cost gap >= 1e-5 * c_ref outweighs a whole quality unit.
    With an array of predicted costs ``(n, k)`` (or ``(k,)``) the span is data driven: from
    ``1e-3 / max cost`` up to ``10 / smallest positive cost gap`` within a row, so the last
    lambda picks the predicted-cheapest LLM of every query even with bonuses up to ~9.
    """
    if size < 2:
        raise ValueError("lambda_grid needs size >= 2 (lambda = 0 plus at least one more)")
    c = np.asarray(c_ref, dtype=float)
    if c.ndim == 0:
        if not np.isfinite(c) or c <= 0:
            raise ValueError(f"c_ref must be a positive cost, got {c_ref!r}")
        lo, hi = 1e-3 / float(c), 1e5 / float(c)
    else:
        lo, hi = _data_lambda_range(np.atleast_2d(c))
    return np.concatenate([[0.0], np.geomspace(lo, hi, size - 1)])


def _data_lambda_range(c: np.ndarray) -> tuple[float, float]:
    finite = c[np.isfinite(c)]
    if finite.size == 0 or finite.max() <= 0:
        raise ValueError("lambda_grid needs at least one positive finite cost")
    c_max = float(finite.max())
    lo = 1e-3 / c_max
    gaps = np.diff(np.sort(np.where(np.isfinite(c), c, np.nan), axis=1), axis=1)
    # Gaps at float-noise level are ties, not a reason to push lambda to 1e15.
    gaps = gaps[np.isfinite(gaps) & (gaps > 1e-9 * c_max)]
    hi = 10.0 / float(gaps.min()) if gaps.size else lo * 1e6
    return lo, max(hi, lo * 10)


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
