"""Budget fidelity: does a router spend what it was told to, for any candidate set?

For each candidate set and stated budget (% of the reference LLM's mean cost on the
held-out queries' calibration, i.e. ``reference_cost`` of the router), the router routes
the held-out queries and the RECORDED cost of its choices is compared with the budget.
The per-set calibration (``MixLLMRouter.calibration_for``) is compared with the single
global calibration of every trained LLM (what routing used before), computed from the same
predictions with the same decision rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mixllm.core.types import RoutingData
from mixllm.routing.decision import choose

TOLERANCE = 0.10  # the stated target: spend within 10 % of the budget


@dataclass
class FidelityRow:
    """One (candidate set, budget) cell; dollars per query."""

    candidates: str
    budget_pct: float
    budget_usd: float
    spend_usd: float
    global_spend_usd: float
    max_spend_usd: float  # what the set spends at lambda = 0: a higher budget cannot bind
    min_spend_usd: float = 0.0  # always the predicted-cheapest: a lower budget is infeasible
    spend_lo: float = float("nan")  # 95 % bootstrap interval of the spend (test sampling)
    spend_hi: float = float("nan")

    @property
    def binding(self) -> bool:
        """False when the budget is above what the set spends with cost ignored, or below
        what it spends on the predicted-cheapest LLM alone (infeasible)."""
        return self.min_spend_usd <= self.budget_usd < self.max_spend_usd

    @property
    def error(self) -> float:
        """(spend - budget) / budget."""
        return self.spend_usd / self.budget_usd - 1.0

    @property
    def met(self) -> bool:
        """Within tolerance, or a non-binding budget not exceeded."""
        if self.budget_usd < self.min_spend_usd:
            return False  # infeasible: reported as not met
        if not self.binding:
            return self.spend_usd <= self.budget_usd * (1 + TOLERANCE)
        return abs(self.error) <= TOLERANCE


def budget_fidelity(
    router,
    test: RoutingData,
    candidate_sets: Mapping[str, Sequence[str] | None],
    budget_pcts: Sequence[float] = (10.0, 25.0, 50.0),
) -> list[FidelityRow]:
    """Spend on ``test`` of ``router`` (a fitted ``MixLLMRouter``) per set and budget.

    ``test`` must hold recorded costs for every LLM of every set (LLMs added to the router
    at runtime included), columns named as the router names them.
    """
    pred = router.predict(test.queries)
    cols = [test.llms.index(m) for m in pred.llms]
    cost = test.cost[:, cols]
    rows = np.arange(len(test))
    bonus = router.cfg.bandit.alpha * pred.uncertainty
    out = []
    for label, cands in candidate_sets.items():
        names = list(router.llms_) if cands is None else list(cands)
        mask = np.array([m in names for m in pred.llms])
        q = np.where(mask, pred.quality, np.nan)
        cal = router.calibration_for(mask)
        max_spend = float(np.nanmean(cost[rows, choose(q, pred.cost, 0.0, bonus)]))
        cheapest = np.nanargmin(np.where(mask, pred.cost, np.nan), axis=1)
        min_spend = float(np.nanmean(cost[rows, cheapest]))
        for pct in budget_pcts:
            budget = router.model.calibration.budget_usd(budget_pct=pct)
            picks = router.route_batch(test.queries, budget_pct=pct, candidates=cands)
            spent = cost[rows, [pred.llms.index(d.llm) for d in picks]]
            glob_lam = router.model.calibration.lambda_for(budget)
            glob = choose(q, pred.cost, glob_lam, bonus)
            lo, hi = _spend_interval(spent)
            out.append(
                FidelityRow(
                    label,
                    float(pct),
                    budget,
                    float(np.nanmean(spent)),
                    float(np.nanmean(cost[rows, glob])),
                    max_spend,
                    min_spend,
                    lo,
                    hi,
                )
            )
        del cal  # computed once above so route_batch hits the cache
    return out


def _spend_interval(spent: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean spend over the test queries."""
    rng = np.random.default_rng(seed)
    x = spent[np.isfinite(spent)]
    means = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def fidelity_table(rows: Sequence[FidelityRow], reference_usd: float) -> pd.DataFrame:
    """The markdown-ready table: spends in % of the reference LLM's mean cost."""

    def pct(x: float) -> float:
        return round(100 * x / reference_usd, 1)

    return pd.DataFrame(
        {
            "candidates": [r.candidates for r in rows],
            "budget %": [r.budget_pct for r in rows],
            "spend % (per-set lambda)": [pct(r.spend_usd) for r in rows],
            "95 % CI": [f"[{pct(r.spend_lo)}, {pct(r.spend_hi)}]" for r in rows],
            "error": [f"{100 * r.error:+.1f} %" for r in rows],
            "spend % (one global lambda)": [pct(r.global_spend_usd) for r in rows],
            "set's spend range %": [f"{pct(r.min_spend_usd)}-{pct(r.max_spend_usd)}" for r in rows],
            "within 10 %": [_verdict(r) for r in rows],
        }
    )


def _verdict(r: FidelityRow) -> str:
    if r.budget_usd < r.min_spend_usd:
        return "NO (infeasible: below the set's cheapest)"
    return ("yes" if r.met else "NO") + ("" if r.binding else " (not binding)")
