"""Metrics on hand-computed curves: choose, sweep, lambda grid, Pareto, hull, AIQ."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mixllm.evaluation import metrics
from mixllm.routing import decision


def test_choose_argmax_at_lambda_zero_and_cheapest_at_huge_lambda() -> None:
    q = np.array([[0.9, 0.5, 0.1], [0.2, 0.8, 0.3]])
    c = np.array([[3.0, 2.0, 1.0], [1.0, 5.0, 2.0]])
    assert metrics.choose(q, c, 0.0).tolist() == [0, 1]
    assert metrics.choose(q, c, 1e6).tolist() == [2, 0]
    # q - 0.3 c: row0 [0.0, -0.1, -0.2] -> 0; row1 [-0.1, -0.7, -0.3] -> 0
    assert metrics.choose(q, c, 0.3).tolist() == [0, 0]


def test_choose_ties_go_to_cheaper_and_nan_never_wins() -> None:
    q = np.array([[0.7, 0.7, np.nan], [np.nan, 0.1, 0.0]])
    c = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    assert metrics.choose(q, c, 0.0).tolist() == [1, 1]


def test_choose_bonus_and_lambda_array_shape() -> None:
    q = np.array([[0.5, 0.6]])
    c = np.array([[1.0, 1.0]])
    assert metrics.choose(q, c, 0.0, bonus=np.array([[0.2, 0.0]])).tolist() == [0]
    out = metrics.choose(np.tile(q, (5, 1)), np.tile(c, (5, 1)), np.array([0.0, 1.0, 2.0]))
    assert out.shape == (3, 5)


def test_operating_point_hand_computed_and_skips_unobserved() -> None:
    quality = np.array([[1.0, 0.0], [0.0, 1.0], [np.nan, 1.0]])
    cost = np.array([[1.0, 3.0], [1.0, 3.0], [1.0, 3.0]])
    c, q = metrics.operating_point(np.array([0, 1, 0]), quality, cost)
    assert c == pytest.approx(5 / 3)
    assert q == pytest.approx(1.0)  # the NaN outcome of row 2 is skipped, not counted as 0


def _random_task(n: int = 200, k: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    q_hat = rng.random((n, k))
    c_hat = rng.random((n, k)) * 1e-3 + 1e-5
    quality = (rng.random((n, k)) < q_hat).astype(float)
    return q_hat, c_hat, quality


def test_sweep_matches_per_lambda_operating_points_and_cost_is_monotone() -> None:
    q_hat, c_hat, quality = _random_task()
    lams = metrics.lambda_grid(c_hat, 30)
    pts = metrics.sweep(q_hat, c_hat, quality, c_hat, lams)
    assert pts.shape == (30, 2)
    for lam, p in zip(lams[::7], pts[::7], strict=True):
        ref = metrics.operating_point(metrics.choose(q_hat, c_hat, lam), quality, c_hat)
        assert p == pytest.approx(ref)
    # With recorded cost = predicted cost, a larger lambda can only buy cheaper answers.
    assert np.all(np.diff(pts[:, 0]) <= 1e-15)


def test_sweep_blocks_give_the_same_points(monkeypatch: pytest.MonkeyPatch) -> None:
    q_hat, c_hat, quality = _random_task(n=50)
    lams = metrics.lambda_grid(c_hat, 12)
    whole = metrics.sweep(q_hat, c_hat, quality, c_hat, lams)
    monkeypatch.setattr(decision, "_SWEEP_BLOCK", 50 * 5 * 2)  # two lambdas per block
    assert np.array_equal(metrics.sweep(q_hat, c_hat, quality, c_hat, lams), whole)


def test_lambda_grid_spans_best_quality_to_cheapest() -> None:
    q_hat, c_hat, _ = _random_task()
    lams = metrics.lambda_grid(c_hat, 40)
    assert len(lams) == 40 and lams[0] == 0.0 and np.all(np.diff(lams) > 0)
    assert np.array_equal(metrics.choose(q_hat, c_hat, lams[0]), q_hat.argmax(axis=1))
    assert np.array_equal(metrics.choose(q_hat, c_hat, lams[-1]), c_hat.argmin(axis=1))


def test_lambda_grid_scalar_reference_cost() -> None:
    lams = metrics.lambda_grid(0.005, 10)
    assert lams[0] == 0.0
    assert lams[1] * 0.005 == pytest.approx(1e-3)
    assert lams[-1] * 0.005 == pytest.approx(1e5)
    with pytest.raises(ValueError):
        metrics.lambda_grid(0.0, 10)


def test_pareto_front_drops_dominated_and_nan() -> None:
    pts = np.array([[1, 0.5], [2, 0.4], [2, 0.7], [3, 0.7], [4, 0.9], [np.nan, 1.0]])
    front = metrics.pareto_front(pts)
    assert front.tolist() == [[1, 0.5], [2, 0.7], [4, 0.9]]


def test_hull_removes_points_under_the_chord_and_decreasing_tail() -> None:
    pts = np.array([[1, 0.5], [2, 0.55], [3, 0.9], [4, 0.8]])
    assert metrics.nondecreasing_convex_hull(pts).tolist() == [[1, 0.5], [3, 0.9]]
    concave = np.array([[1, 0.5], [2, 0.8], [3, 0.9]])
    assert metrics.nondecreasing_convex_hull(concave).tolist() == concave.tolist()


def test_aiq_flat_line_is_its_quality() -> None:
    assert metrics.aiq(np.array([[1, 0.6], [3, 0.6]]), 1.0, 5.0) == pytest.approx(0.6)


def test_aiq_single_point_scores_zero_left_of_it() -> None:
    # 0 on [1, 2), 0.8 on [2, 5]: 0.8 * 3 / 4
    assert metrics.aiq(np.array([[2, 0.8]]), 1.0, 5.0) == pytest.approx(0.6)
    assert metrics.aiq(np.array([[5, 0.8]]), 1.0, 5.0) == 0.0


def test_aiq_integrates_the_hull_not_the_raw_points() -> None:
    pts = np.array([[1, 0.5], [2, 0.55], [3, 0.9]])
    # Hull chord from (1, .5) to (3, .9): mean 0.7; raw polyline would give 0.625.
    assert metrics.aiq(pts, 1.0, 3.0) == pytest.approx(0.7)


def test_aiq_router_cheaper_than_range_and_flat_right() -> None:
    pts = np.array([[0.5, 0.4], [1.5, 0.8]])
    # On [1, 2]: 0.6 -> 0.8 linear over [1, 1.5] (area .35), flat .8 over [1.5, 2] (.4).
    assert metrics.aiq(pts, 1.0, 2.0) == pytest.approx(0.75)


def test_aiq_degenerate_inputs() -> None:
    assert metrics.aiq(np.empty((0, 2)), 1.0, 2.0) == 0.0
    assert metrics.aiq(np.array([[np.nan, 0.9]]), 1.0, 2.0) == 0.0
    assert metrics.aiq(np.array([[1.0, 0.9]]), 1.0, 1.0) == pytest.approx(0.9)


def test_quality_at_cost() -> None:
    pts = np.array([[1, 0.5], [2, 0.7], [3, 0.6]])
    assert metrics.quality_at_cost(pts, 2.5) == 0.7
    assert metrics.quality_at_cost(pts, 3.0) == 0.7
    assert metrics.quality_at_cost(pts, 1.0) == 0.5
    assert math.isnan(metrics.quality_at_cost(pts, 0.5))
