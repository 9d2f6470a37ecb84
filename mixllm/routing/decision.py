"""The meta decision maker, once for every router: score, choose, the sweep over the
willingness to pay (lambda), the lambda grid and the budget calibration.

score = predicted quality + bonus - lambda x predicted cost, where MixLLM's bonus is
``alpha x uncertainty - latency penalty`` and a baseline's is zero. Evaluation, calibration
and live routing all call these functions, so a router is measured exactly as it decides.
Conventions: an operating point is ``(mean_cost, mean_quality)`` of the RECORDED outcomes
of the chosen LLMs; costs are dollars per query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mixllm.core.errors import InvalidRequestError

# Scores within this distance of the best count as ties (broken by predicted cost):
# predictors often return exactly equal qualities (KNN means, tag means) and float
# rounding of ``q - lam * c`` must not turn such ties into arbitrary picks.
_TIE_EPS = 1e-12
# Upper bound on the (lambdas x queries x llms) block that ``sweep`` materialises at once.
_SWEEP_BLOCK = 4_000_000


def score(
    q_hat: np.ndarray,
    c_hat: np.ndarray,
    lam: float | np.ndarray,
    bonus: np.ndarray | None = None,
) -> np.ndarray:
    """``q_hat + bonus - lam * c_hat``: (n, k) for a scalar lambda, (m, n, k) for m lambdas.

    NaN (unknown prediction, excluded candidate) stays NaN.
    """
    q = np.asarray(q_hat, dtype=float)
    c = np.asarray(c_hat, dtype=float)
    if q.shape != c.shape or q.ndim != 2:
        raise ValueError(f"q_hat {q.shape} and c_hat {c.shape} must be the same (n, k) shape")
    if bonus is not None:
        q = q + np.asarray(bonus, dtype=float)
    lam_arr = np.asarray(lam, dtype=float)
    if lam_arr.ndim == 0:
        return q - float(lam_arr) * c
    return q[None] - lam_arr.reshape(-1, 1, 1) * c[None]


def choose(
    q_hat: np.ndarray,
    c_hat: np.ndarray,
    lam: float | np.ndarray,
    bonus: np.ndarray | None = None,
) -> np.ndarray:
    """Per-query argmax of ``score``; ties go to the cheaper LLM.

    ``lam`` a scalar gives ``(n,)`` choices, an array of ``m`` lambdas gives ``(m, n)``.
    NaN scores (unknown prediction, excluded candidate) never win unless a whole row is NaN.
    """
    s = score(q_hat, c_hat, lam, bonus)
    scalar = s.ndim == 2
    s = s[None] if scalar else s
    s = np.where(np.isnan(s), -np.inf, s)
    best = s.max(axis=2, keepdims=True)
    tied = s >= best - _TIE_EPS
    c = np.nan_to_num(np.asarray(c_hat, dtype=float), nan=np.inf)
    out = np.argmin(np.where(tied, c[None], np.inf), axis=2)
    return out[0] if scalar else out


def operating_point(
    choices: np.ndarray, quality: np.ndarray, cost: np.ndarray
) -> tuple[float, float]:
    """Mean recorded ``(cost, quality)`` of the chosen LLMs; unobserved outcomes are skipped."""
    choices = np.asarray(choices, dtype=int)
    rows = np.arange(len(choices))
    return float(nanmean(cost[rows, choices])), float(nanmean(quality[rows, choices]))


def nanmean(x: np.ndarray, axis: int | None = None, empty: float = np.nan) -> np.ndarray:
    """Mean of the observed (non-NaN) values along ``axis``; ``empty`` where none is.

    Unobserved outcomes are skipped everywhere (operating points, sweeps, per-LLM means),
    without numpy's warning on an all-NaN slice.
    """
    x = np.asarray(x, dtype=float)
    ok = ~np.isnan(x)
    counts = ok.sum(axis=axis)
    sums = np.where(ok, x, 0.0).sum(axis=axis)
    return np.where(counts > 0, sums / np.maximum(counts, 1), empty)


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
            out[start : start + step, 0] = nanmean(picked_c, axis=1)
            out[start : start + step, 1] = nanmean(picked_q, axis=1)
    return out


def lambda_grid(
    c_ref: float | np.ndarray | None = None,
    size: int = 60,
    *,
    span: tuple[float, float] | None = None,
) -> np.ndarray:
    """``size`` lambdas: 0 then log-spaced from "cost is noise" to "cheapest always wins".

    With a scalar reference cost (e.g. the reference LLM's mean cost) the log part spans
    ``lambda * c_ref`` in [1e-3, 1e5]: at the low end cost moves a score by 0.001 quality
    points, at the high end any cost gap >= 1e-5 * c_ref outweighs a whole quality unit.
    With an array of predicted costs ``(n, k)`` (or ``(k,)``) the span is data driven: from
    ``1e-3 / max cost`` up to ``10 / smallest positive cost gap`` within a row, so the last
    lambda picks the predicted-cheapest LLM of every query even with bonuses up to ~9.
    With ``span`` = ``(lo, hi)`` instead of ``c_ref`` the log part spans exactly that range
    (e.g. a denser sweep where a coarse one saw the spend move).
    """
    if size < 2:
        raise ValueError("lambda_grid needs size >= 2 (lambda = 0 plus at least one more)")
    if (c_ref is None) == (span is None):
        raise ValueError("lambda_grid needs exactly one of c_ref and span")
    if span is not None:
        lo, hi = float(span[0]), float(span[1])
        if not hi > lo > 0:
            raise ValueError(f"span must be 0 < lo < hi, got {span!r}")
    else:
        lo, hi = _lambda_range(np.asarray(c_ref, dtype=float))
    return np.concatenate([[0.0], np.geomspace(lo, hi, size - 1)])


def _lambda_range(c: np.ndarray) -> tuple[float, float]:
    if c.ndim == 0:
        if not np.isfinite(c) or c <= 0:
            raise ValueError(f"c_ref must be a positive cost, got {float(c)!r}")
        return 1e-3 / float(c), 1e5 / float(c)
    c = np.atleast_2d(c)
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


@dataclass
class BudgetCalibration:
    """Lambda as a function of the mean cost per query it produced on calibration data.

    RouteLLM calibrates its threshold so that a stated share of calls goes to the strong
    model; here the stated quantity is dollars per query, so the user never tunes lambda.
    """

    lambdas: np.ndarray
    mean_cost: np.ndarray  # recorded cost of the choices on the calibration split
    mean_quality: np.ndarray
    reference_cost: float  # mean cost of the reference LLM on the calibration split

    @classmethod
    def fit(
        cls,
        q_hat: np.ndarray,
        c_hat: np.ndarray,
        bonus: np.ndarray | None,
        quality: np.ndarray,
        cost: np.ndarray,
        reference_cost: float,
        size: int = 60,
        lambdas: np.ndarray | None = None,
    ) -> BudgetCalibration:
        """Sweep lambda on calibration data, scoring the choices with ``cost`` / ``quality``
        (recorded outcomes, or predicted ones where none were recorded).

        ``lambdas`` defaults to ``lambda_grid(reference_cost, size)``.
        """
        if lambdas is None:
            lambdas = lambda_grid(reference_cost, size)
        points = sweep(q_hat, c_hat, quality, cost, lambdas, bonus)
        mean_cost = np.nan_to_num(points[:, 0], nan=np.inf)
        return cls(lambdas, mean_cost, points[:, 1], float(reference_cost))

    def budget_usd(self, budget_usd: float | None = None, budget_pct: float | None = None) -> float:
        """Dollars per query for a budget stated in dollars or in % of the reference LLM's cost."""
        if budget_usd is not None:
            if not np.isfinite(budget_usd):
                raise InvalidRequestError(f"budget_usd is not a finite number: {budget_usd}")
            if not budget_usd > 0:
                raise InvalidRequestError(f"budget_usd must be > 0, got {budget_usd}")
            return float(budget_usd)
        if budget_pct is not None:
            if not np.isfinite(budget_pct):
                raise InvalidRequestError(f"budget_pct is not a finite number: {budget_pct}")
            if not 0 < budget_pct <= 1000:
                raise InvalidRequestError(f"budget_pct must be in (0, 1000], got {budget_pct}")
            return self.reference_cost * budget_pct / 100.0
        raise InvalidRequestError("a budget (budget_usd or budget_pct) is required")

    def lambda_for(self, budget_usd: float) -> float:
        """The smallest lambda (highest quality) whose calibrated mean cost fits the budget."""
        fits = np.flatnonzero(self.mean_cost <= budget_usd * (1 + 1e-9))
        return float(self.lambdas[fits[0]] if fits.size else self.lambdas[-1])
