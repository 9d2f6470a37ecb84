"""Decision scores and budget calibration."""

import numpy as np
import pytest

from mixllm.core.errors import InvalidRequestError
from mixllm.routing.decision import BudgetCalibration, lambda_grid, nanmean, score


def test_score_trades_quality_for_cost():
    q = np.array([[0.9, 0.6]])
    c = np.array([[0.01, 0.001]])
    assert score(q, c, lam=0.0).argmax() == 0
    assert score(q, c, lam=100.0).argmax() == 1


def test_uncertainty_bonus_and_penalty_move_the_choice():
    q = np.array([[0.7, 0.7]])
    c = np.zeros_like(q)
    assert score(q, c, 0, bonus=np.array([[0.0, 0.2]])).argmax() == 1
    assert score(q, c, 0, bonus=-np.array([[0.5, 0.0]])).argmax() == 1


def test_grid_starts_at_zero_and_grows():
    g = lambda_grid(0.01, 10)
    assert g[0] == 0 and np.all(np.diff(g) > 0)


@pytest.fixture
def calibration():
    rng = np.random.default_rng(0)
    n = 400
    quality = np.column_stack([rng.random(n) < 0.9, rng.random(n) < 0.6]).astype(float)
    cost = np.column_stack([np.full(n, 0.01), np.full(n, 0.001)])
    pred = quality * 0.5 + 0.25
    return BudgetCalibration.fit(pred, cost, None, quality, cost, 0.01)


def test_calibrated_lambda_respects_the_budget(calibration):
    for budget in (0.002, 0.005, 0.009):
        lam = calibration.lambda_for(budget)
        i = int(np.flatnonzero(calibration.lambdas == lam)[0])
        assert calibration.mean_cost[i] <= budget


def test_larger_budget_never_needs_a_larger_lambda(calibration):
    lams = [calibration.lambda_for(b) for b in (0.001, 0.003, 0.006, 0.01)]
    assert lams == sorted(lams, reverse=True)


def test_budget_pct_is_relative_to_the_reference(calibration):
    assert calibration.budget_usd(budget_pct=50) == pytest.approx(0.005)
    assert calibration.budget_usd(budget_usd=0.002) == 0.002
    with pytest.raises(InvalidRequestError, match="budget_pct"):
        calibration.budget_usd(budget_pct=0)
    with pytest.raises(InvalidRequestError, match="budget"):
        calibration.budget_usd()
    with pytest.raises(InvalidRequestError, match="not a finite number"):
        calibration.budget_usd(budget_pct=float("nan"))


@pytest.mark.timeout(30)
def test_grid_over_a_span_and_one_source_only():
    g = lambda_grid(size=5, span=(1.0, 1e3))
    assert np.allclose(g, [0.0, 1.0, 10.0, 100.0, 1000.0])
    with pytest.raises(ValueError):
        lambda_grid(0.01, 5, span=(1.0, 10.0))
    with pytest.raises(ValueError):
        lambda_grid(size=5)


@pytest.mark.timeout(30)
def test_nanmean_skips_unobserved_and_fills_empty_slices():
    x = np.array([[1.0, np.nan], [3.0, np.nan]])
    assert nanmean(x, axis=0, empty=0.5).tolist() == [2.0, 0.5]
    assert nanmean(x, axis=1).tolist() == [1.0, 3.0]
    assert float(nanmean(x)) == 2.0


def test_a_decision_with_non_finite_numbers_is_strict_json():
    """An infinite wait (an LLM that cannot serve soon) or a NaN prediction must not make the
    service's strict JSON rendering fail: such numbers become null, the rest is unchanged."""
    import json

    from mixllm.routing.outputs import CandidateScore, Decision

    slow = CandidateScore("slow", float("nan"), 1e-3, float("inf"), 0.1, -np.inf)
    fine = CandidateScore("fine", 0.8, 2e-4, 1.5, np.float64(0.05), 0.7)
    out = Decision("fine", ["task:x"], [slow, fine], 3.0, 1e-3, 12, {"w": [np.nan, 1.0]}).to_dict()
    text = json.dumps(out, allow_nan=False)  # what the service's JSONResponse does
    back = json.loads(text)
    assert back["candidates"][0] == {
        "llm": "slow",
        "quality": None,
        "cost": 1e-3,
        "latency_s": None,
        "uncertainty": 0.1,
        "score": None,
    }
    assert back["candidates"][1]["uncertainty"] == 0.05 and back["lambda"] == 3.0
    assert back["extra"] == {"w": [None, 1.0]}
    assert list(out) == [
        "llm",
        "tags",
        "candidates",
        "budget_usd",
        "prompt_tokens",
        "extra",
        "lambda",
    ]
