"""Budget -> lambda for the candidate set a decision really uses.

Lambda calibrated once with every trained LLM does not hold a budget when a request or a
deployment restricts the candidates (with fewer cheap alternatives the same lambda buys
the expensive LLM far more often) or when an LLM is added at runtime. So the artifact keeps
its calibration rows (out-of-sample predictions, recorded outcomes: ``CalibrationRows``)
and lambda is re-calibrated on them for each candidate set and online-state version, on
demand and cached (a sweep over a few hundred lambdas costs milliseconds).

Spend is measured on the calibration rows as the RECORDED cost of each choice (times the
cost scale learned online) where the rows recorded that LLM, and its PREDICTED cost
(price x predicted output tokens, scale applied) where they did not, i.e. for LLMs added
at runtime. Quality at each lambda is the recorded one (NaN-skipping; informative only).
"""

from __future__ import annotations

import threading

import numpy as np

from mixllm.routing.artifact import TrainedRouter
from mixllm.routing.decision import BudgetCalibration, lambda_grid
from mixllm.routing.estimates import CandidateTable, combine
from mixllm.routing.state import OnlineState

# Lambdas per re-calibration: the data-driven range spans many decades, and a denser grid
# lands the spend closer to the stated budget (step ~ 6 % in lambda at 300 points).
CANDIDATE_GRID_SIZE = 300
_CACHE_SIZE = 64
# Feedback moves the bandit's corrections, hence the choices at a given lambda, but slowly:
# re-calibrating on every state version would put a ~50-100 ms sweep on the request after
# every feedback. The key holds what moves spend at once (candidate set, runtime LLMs,
# learned cost scales); bandit learning refreshes the calibration every this many versions.
REFRESH_VERSIONS = 256


def calibrate_for(
    model: TrainedRouter,
    state: OnlineState,
    table: CandidateTable,
    mask: np.ndarray,
    alpha: float,
    size: int = CANDIDATE_GRID_SIZE,
) -> BudgetCalibration:
    """Budget -> lambda for the candidates ``mask`` ((k,) bool over ``table.llms``).

    Falls back to the artifact's global calibration when it has no calibration rows.
    """
    rows = model.calibration_rows
    if rows is None or len(rows) == 0:
        return model.calibration
    est = combine(rows.offline, state, table, rows.tokens)
    spend, quality = _recorded_or_predicted(rows.cost, rows.quality, est.cost, table)
    q_hat = np.where(mask, est.quality, np.nan)
    c_hat = np.where(mask, est.cost, np.nan)
    bonus = alpha * est.uncertainty
    ref = model.calibration.reference_cost
    if not (np.isfinite(c_hat) & (c_hat > 0)).any():
        # only free candidates: cost cannot trade against quality, lambda 0 is the answer
        return BudgetCalibration.fit(q_hat, c_hat, bonus, quality, spend, ref, lambdas=np.zeros(1))
    coarse = BudgetCalibration.fit(
        q_hat, c_hat, bonus, quality, spend, ref, lambdas=lambda_grid(c_hat, size)
    )
    # The data-driven grid spans many decades, so near a small budget one step can move
    # the spend by 40 %: sweep again, densely, where the spend actually changes.
    return BudgetCalibration.fit(
        q_hat, c_hat, bonus, quality, spend, ref, lambdas=_focused(coarse, size)
    )


def _focused(coarse: BudgetCalibration, size: int) -> np.ndarray:
    """Lambda 0 plus ``size`` log-spaced lambdas over the coarse grid's active span."""
    cost, lams = coarse.mean_cost, coarse.lambdas
    finite = np.isfinite(cost)
    if finite.sum() < 2 or np.ptp(cost[finite]) <= 0:
        return lams
    top, bottom = cost[finite].max(), cost[finite].min()
    moving = np.flatnonzero(finite & (cost < top) & (cost > bottom))
    if moving.size == 0:
        first = int(np.argmax(finite & (cost < top)))
        moving = np.array([first])
    lo = lams[max(int(moving[0]) - 1, 1)]
    hi = lams[min(int(moving[-1]) + 1, len(lams) - 1)]
    if not hi > lo > 0:
        return lams
    return lambda_grid(size=size + 1, span=(lo, hi))


def _recorded_or_predicted(
    cost: np.ndarray, quality: np.ndarray, c_pred: np.ndarray, table: CandidateTable
) -> tuple[np.ndarray, np.ndarray]:
    """(n, k known) spend and quality: recorded x learned scale, else predicted / NaN."""
    n, k = c_pred.shape
    spend = c_pred.copy()
    qual = np.full((n, k), np.nan)
    t = table.n_trained
    recorded = cost[:, :t] * table.cost_scale[:t]
    spend[:, :t] = np.where(np.isfinite(recorded), recorded, c_pred[:, :t])
    qual[:, :t] = quality[:, :t]
    return spend, qual


class CalibrationCache:
    """Calibrations keyed by what moves spend (candidates, runtime LLMs, cost scales) and by
    the state version in steps of ``REFRESH_VERSIONS``; bounded, thread-safe."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._size = size
        self._items: dict[tuple, BudgetCalibration] = {}
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict) -> CalibrationCache:
        # a lock cannot be copied, and a copied router may diverge: start empty
        return CalibrationCache(self._size)

    def __getstate__(self) -> dict:
        # shipped to another process (a Dask worker): the size only, the cache starts empty
        return {"size": self._size}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["size"])

    def get(
        self,
        model: TrainedRouter,
        state: OnlineState,
        table: CandidateTable,
        mask: np.ndarray,
        alpha: float,
    ) -> BudgetCalibration:
        """The cached calibration for this state version and mask, computed on a miss."""
        key = (
            table.version // REFRESH_VERSIONS,
            np.asarray(mask, dtype=bool).tobytes(),
            tuple(table.llms),
            tuple(np.round(table.cost_scale, 3)),
            tuple(sorted(state.added)),
        )
        with self._lock:
            hit = self._items.get(key)
        if hit is not None:
            return hit
        cal = calibrate_for(model, state, table, mask, alpha)
        with self._lock:
            if len(self._items) >= self._size:
                self._items.clear()  # versions move on; old entries are dead weight
            self._items[key] = cal
        return cal
