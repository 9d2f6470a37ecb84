"""The promotion gate: a new version becomes champion only if it is not worse than the
current champion on the registry's trusted evaluation set (see ``evalset``), at the same
dollar budget. Fresh feedback is reported beside the decision, never gated on: feedback is
what an attacker controls.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mixllm.core.errors import first_line
from mixllm.core.types import RoutingData
from mixllm.registry.stores import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    current_alias_version,
    load_version,
)

# Gate tolerances, absolute on the 0-1 quality scale: a new version may lose at most this
# much AIQ and this much mean quality at the calibrated budget against the champion. They
# absorb the noise of retraining on the same data (seeds, LightGBM bagging) so that an
# equivalent retrain still gets promoted, while a real regression does not.
AIQ_TOLERANCE = 0.005
QUALITY_TOLERANCE = 0.01
# Relative: at the same $ budget, a new version may spend at most 25 % more per query than
# the champion unless it buys more than QUALITY_TOLERANCE of quality with it. A router that
# pays several times more for the same answers is a regression (poisoned labels do that);
# retraining noise measured on RouterBench (another seed) was +8 %.
COST_TOLERANCE = 0.25
# ... and only once the candidate spends at least this share of the stated budget: far
# under budget, spend moves with retraining noise (a saturated task: +50 % of almost
# nothing) and the user's constraint is not at stake.
MATERIAL_SPEND = 0.5
# Share of the run's rows that repeat a trusted query with a contradicting outcome beyond
# which the run's data is refused whatever its scores: the trusted set is the ground truth.
CONTRADICTION_TOLERANCE = 0.05
# ... and never for fewer rows than this: one user disagreeing with a benchmark label on a
# query that happens to be trusted is not poisoning.
MIN_CONTRADICTING_ROWS = 3


@dataclass(frozen=True)
class GateScores:
    """What the gate compares, measured on the trusted evaluation set."""

    aiq: float
    quality: float  # mean recorded quality at the calibrated budget
    cost: float  # mean recorded cost per query at that budget, $
    budget_usd: float


@dataclass(frozen=True)
class GateDecision:
    """The alias a new version gets, and why."""

    alias: str
    reason: str
    candidate: GateScores | None
    champion: GateScores | None = None
    champion_version: str | None = None

    @property
    def promoted(self) -> bool:
        """Whether the new version becomes the champion."""
        return self.alias == CHAMPION


def _finite(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


def decide(
    candidate: GateScores,
    champion: GateScores | None,
    champion_version: str | None = None,
    *,
    aiq_tolerance: float = AIQ_TOLERANCE,
    quality_tolerance: float = QUALITY_TOLERANCE,
    cost_tolerance: float = COST_TOLERANCE,
    champion_error: str | None = None,
) -> GateDecision:
    """Champion if not worse than the champion in AIQ, in quality at budget, and in cost at
    budget (unless the extra cost buys quality), else challenger."""
    if champion_version is None:
        return GateDecision(
            CHAMPION, "no champion yet: the first version becomes champion", candidate
        )
    if champion is None:
        # A champion that cannot be scored on this set cannot be beaten safely; a human decides.
        reason = f"champion v{champion_version} could not be evaluated ({champion_error})"
        return GateDecision(CHALLENGER, reason, candidate, None, champion_version)
    d_aiq = _finite(candidate.aiq) - _finite(champion.aiq)
    d_q = _finite(candidate.quality) - _finite(champion.quality)
    figures = (
        f"AIQ {candidate.aiq:.4f} vs {champion.aiq:.4f} (tolerance {aiq_tolerance}), "
        f"quality at ${candidate.budget_usd:.6f}/query {candidate.quality:.4f} vs "
        f"{champion.quality:.4f} (tolerance {quality_tolerance}), cost/query "
        f"${candidate.cost:.6f} vs ${champion.cost:.6f} (tolerance {cost_tolerance:.0%}), "
        "same trusted evaluation set"
    )
    worse = [
        name
        for name, d, tol in (
            ("AIQ", d_aiq, aiq_tolerance),
            ("quality at budget", d_q, quality_tolerance),
        )
        if not d >= -tol
    ]
    if _costlier(candidate, champion, cost_tolerance) and not d_q > quality_tolerance:
        worse.append("cost at budget")
    if worse:
        reason = f"worse than champion v{champion_version} in {' and '.join(worse)}: {figures}"
        return GateDecision(CHALLENGER, reason, candidate, champion, champion_version)
    reason = f"not worse than champion v{champion_version}: {figures}"
    return GateDecision(CHAMPION, reason, candidate, champion, champion_version)


def _costlier(candidate: GateScores, champion: GateScores, tolerance: float) -> bool:
    if not math.isfinite(candidate.cost):
        return True
    material = candidate.cost >= MATERIAL_SPEND * candidate.budget_usd
    return (
        material
        and math.isfinite(champion.cost)
        and candidate.cost > champion.cost * (1 + tolerance)
    )


def check_data(shared: int, contradicting: int, tolerance: float) -> str | None:
    """Why the run's data is refused (it contradicts the trusted set), None if it is not."""
    if contradicting < MIN_CONTRADICTING_ROWS or contradicting <= tolerance * shared:
        return None
    return (
        f"the training data contradicts the trusted evaluation set on {contradicting} of the "
        f"{shared} rows that repeat a trusted query ({contradicting / shared:.0%}, tolerance "
        f"{tolerance:.0%}): labels or feedback look poisoned"
    )


def gate_scores(router: Any, test: RoutingData, budget_usd: float | None = None) -> GateScores:
    """AIQ of ``router`` on ``test`` and its recorded quality at ``budget_usd``.

    ``budget_usd`` None: the router's own calibrated budget (the new version's); the champion
    is then scored at that same budget in dollars, so both face the same spending limit.
    """
    from mixllm.evaluation.protocol import scores_from_predictions
    from mixllm.evaluation.scoring import evaluate_scores

    decisions = router.route_batch(test.queries, budget_usd=budget_usd)
    sweep = scores_from_predictions(
        router.predict(test.queries), test.llms, router.cfg.bandit.alpha
    )
    result = evaluate_scores(test, {"router": sweep}, calibrated={"router": decisions})
    r = result.routers["router"]
    return GateScores(r.aiq, r.mean_quality, r.mean_cost, float(decisions[0].budget_usd))


def load_champion_for_gate(
    name: str = MODEL_NAME, uri: str | None = None
) -> tuple[str | None, Any, str | None]:
    """(champion version, its router, error): all None without a champion; a router that
    cannot be loaded is reported as the error, not raised."""
    version = current_alias_version(name, CHAMPION, uri)
    if version is None:
        return None, None, None
    try:
        return version, load_version(name, version, uri)[0], None
    except Exception as exc:
        return version, None, f"{type(exc).__name__}: {first_line(exc)}"


def run_gate(
    router: Any,
    trusted: RoutingData,
    champion: tuple[str | None, Any, str | None],
    *,
    contradictions: tuple[int, int] = (0, 0),
    aiq_tolerance: float = AIQ_TOLERANCE,
    quality_tolerance: float = QUALITY_TOLERANCE,
    cost_tolerance: float = COST_TOLERANCE,
    contradiction_tolerance: float = CONTRADICTION_TOLERANCE,
) -> GateDecision:
    """Score the new router, then the champion on the same trusted set at the same $ budget;
    ``contradictions`` (rows repeating a trusted query, how many contradict it) of the
    run's data can refuse it whatever the scores."""
    version, champion_router, error = champion
    try:
        candidate = gate_scores(router, trusted)
    except Exception as exc:
        if version is None:
            raise  # the first version is scored on its own held-out rows: a real failure
        # A candidate that cannot be scored on the trusted set never replaces anything.
        reason = f"the new version could not be evaluated on the trusted set: {first_line(exc)}"
        return GateDecision(CHALLENGER, reason, None, None, version)
    scores = None
    if champion_router is not None:
        try:
            scores = gate_scores(champion_router, trusted, candidate.budget_usd)
        except Exception as exc:
            # LLMs missing from this set, say: the gate reports it and a human decides.
            error = f"{type(exc).__name__}: {first_line(exc)}"
    decision = decide(
        candidate,
        scores,
        version,
        aiq_tolerance=aiq_tolerance,
        quality_tolerance=quality_tolerance,
        cost_tolerance=cost_tolerance,
        champion_error=error,
    )
    refused = check_data(*contradictions, contradiction_tolerance)
    if refused is None or version is None:
        return decision
    reason = f"{refused}; scores: {decision.reason}"
    return GateDecision(CHALLENGER, reason, candidate, scores, version)


def recheck_champion(
    decision: GateDecision, name: str = MODEL_NAME, uri: str | None = None
) -> GateDecision:
    """Demote a promotion if the champion moved while this run was gating (concurrent runs)."""
    if not decision.promoted:
        return decision
    now = current_alias_version(name, CHAMPION, uri)
    if now == decision.champion_version:
        return decision
    reason = (
        f"champion moved to v{now} during this run (gated against "
        f"v{decision.champion_version}); retrain to compare against it"
    )
    return GateDecision(
        CHALLENGER, reason, decision.candidate, decision.champion, decision.champion_version
    )


def gate_metrics(decision: GateDecision) -> dict[str, float]:
    """The decision as MLflow metrics (finite ones only)."""
    out = {f"gate_{k}": v for k, v in asdict(decision.candidate or _NAN_SCORES).items()}
    if decision.champion is not None:
        out.update({f"gate_champion_{k}": v for k, v in asdict(decision.champion).items()})
    out["gate_promoted"] = float(decision.promoted)
    return {k: float(v) for k, v in out.items() if math.isfinite(float(v))}


_NAN_SCORES = GateScores(math.nan, math.nan, math.nan, math.nan)


def feedback_report(routers: dict[str, Any], fresh: pd.DataFrame | None) -> dict[str, float]:
    """How well each router predicts the quality users reported since the champion was
    trained: ``feedback_mae.<name>`` (mean absolute error) over ``feedback_rows_fresh``."""
    if fresh is None or fresh.empty:
        return {"feedback_rows_fresh": 0.0}
    out = {"feedback_rows_fresh": float(len(fresh))}
    for name, router in routers.items():
        if router is None:
            continue
        known = fresh[fresh["llm"].isin(list(router.all_llms_))]
        if known.empty:
            continue
        pred = router.predict(known["query"].astype(str).tolist())
        cols = [pred.llms.index(llm) for llm in known["llm"]]
        predicted = pred.quality[np.arange(len(known)), cols]
        out[f"feedback_mae.{name}"] = float(np.mean(np.abs(predicted - known["quality"])))
    return {k: v for k, v in out.items() if math.isfinite(v)}
