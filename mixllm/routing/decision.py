"""Meta decision maker: score = quality - lambda * cost + alpha * uncertainty - latency penalty."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mixllm.core.errors import InvalidRequestError


def scores(
    quality: np.ndarray,
    cost: np.ndarray,
    uncertainty: np.ndarray,
    lam: float,
    alpha: float,
    penalty: np.ndarray | None = None,
) -> np.ndarray:
    """The decision score of every (query, LLM) pair."""
    s = quality - lam * cost + alpha * uncertainty
    return s if penalty is None else s - penalty


def lambda_grid(reference_cost: float, size: int) -> np.ndarray:
    """0 then log-spaced willingness-to-pay values, from negligible to cost-dominated."""
    ref = max(reference_cost, 1e-12)
    return np.concatenate([[0.0], np.logspace(np.log10(1e-3 / ref), np.log10(1e3 / ref), size)])


@dataclass
class BudgetCalibration:
    """Lambda as a function of the mean cost per query it produced on validation data.

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
        pred_quality: np.ndarray,
        pred_cost: np.ndarray,
        uncertainty: np.ndarray,
        quality: np.ndarray,
        cost: np.ndarray,
        alpha: float,
        reference_cost: float,
        size: int = 60,
    ) -> BudgetCalibration:
        """Sweep lambda on calibration data, scoring the choices with recorded outcomes."""
        lambdas = lambda_grid(reference_cost, size)
        rows = np.arange(len(quality))
        mc, mq = [], []
        q_obs = np.where(np.isnan(quality), np.nanmean(quality, axis=0), quality)
        c_obs = np.where(np.isnan(cost), np.nanmean(cost, axis=0), cost)
        for lam in lambdas:
            pick = np.argmax(scores(pred_quality, pred_cost, uncertainty, lam, alpha), axis=1)
            mc.append(c_obs[rows, pick].mean())
            mq.append(q_obs[rows, pick].mean())
        return cls(lambdas, np.asarray(mc), np.asarray(mq), float(reference_cost))

    def budget_usd(self, budget_usd: float | None = None, budget_pct: float | None = None) -> float:
        """Dollars per query for a budget stated in dollars or in % of the reference LLM's cost."""
        if budget_usd is not None:
            if not budget_usd > 0:
                raise InvalidRequestError(f"budget_usd must be > 0, got {budget_usd}")
            return float(budget_usd)
        if budget_pct is not None:
            if not 0 < budget_pct <= 1000:
                raise InvalidRequestError(f"budget_pct must be in (0, 1000], got {budget_pct}")
            return self.reference_cost * budget_pct / 100.0
        raise InvalidRequestError("a budget (budget_usd or budget_pct) is required")

    def lambda_for(self, budget_usd: float) -> float:
        """The smallest lambda (highest quality) whose calibrated mean cost fits the budget."""
        fits = np.flatnonzero(self.mean_cost <= budget_usd * (1 + 1e-9))
        return float(self.lambdas[fits[0]] if fits.size else self.lambdas[-1])
