"""Baseline routers on a synthetic task where quality depends on a feature cluster."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from _synth import LLMS, PRICES, Synth, make_synth, split
from threadpoolctl import threadpool_limits

from mixllm.core.errors import NotFittedError
from mixllm.evaluation import baselines, metrics, reference_routers


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def task() -> tuple[Synth, Synth]:
    return split(make_synth(n=360, seed=1), 240)


def _fit_predict(name: str, train: Synth, test: Synth) -> np.ndarray:
    model = baselines.make_baselines(seed=0)[name]
    if name == "tag_mean":
        return model.fit_quality(train.tags, train.data.quality).predict_quality(test.tags)
    return model.fit_quality(train.X, train.data.quality).predict_quality(test.X)


def _random_quality(test: Synth) -> float:
    ch = reference_routers.RandomRouter(seed=0).choose(len(test.X), len(LLMS))
    return metrics.operating_point(ch, test.data.quality, test.data.cost)[1]


@pytest.mark.parametrize("name", baselines.LEARNED)
@pytest.mark.parametrize("nan_frac", [0.0, 0.3])
def test_learned_baseline_beats_random(name: str, nan_frac: float) -> None:
    train, test = split(make_synth(n=360, seed=1, nan_frac=nan_frac), 240)
    q_hat = _fit_predict(name, train, test)
    assert q_hat.shape == (len(test.X), len(LLMS))
    assert np.isfinite(q_hat).all() and q_hat.min() >= 0 and q_hat.max() <= 1
    # Score the choices against the complete (NaN-free) outcomes of the same queries.
    full = make_synth(n=360, seed=1).data.subset(np.arange(240, 360))
    chosen = metrics.operating_point(metrics.choose(q_hat, full.cost, 0.0), full.quality, full.cost)
    assert chosen[1] > _random_quality(test) + 0.25


def test_knn_with_missing_outcomes_equals_knn_on_observed_rows(task) -> None:
    train, test = task
    q = train.data.quality.copy()
    q[::3, 2] = np.nan
    both = baselines.KNNRouter(n_neighbors=5).fit_quality(train.X, q).predict_quality(test.X)
    obs = ~np.isnan(q[:, 2])
    only = baselines.KNNRouter(n_neighbors=5).fit_quality(train.X[obs], q[obs])
    only = only.predict_quality(test.X)
    assert np.allclose(both[:, 2], only[:, 2])


def test_knn_is_the_mean_of_the_nearest_neighbours() -> None:
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    q = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    knn = baselines.KNNRouter(n_neighbors=2).fit_quality(X, q)
    pred = knn.predict_quality(np.array([[1.0, 0.05]]))
    assert pred.tolist() == [[0.5, 0.0]]


def test_mf_is_deterministic_given_seed(task) -> None:
    train, test = task
    a = baselines.MFRouter(seed=3, epochs=30).fit_quality(train.X, train.data.quality)
    b = baselines.MFRouter(seed=3, epochs=30).fit_quality(train.X, train.data.quality)
    assert np.array_equal(a.predict_quality(test.X), b.predict_quality(test.X))


def test_tag_mean_averages_tags_and_falls_back_to_global_mean() -> None:
    tags = [["a"], ["a", "b"], ["b"], []]
    q = np.array([[1.0, 0.0], [0.0, np.nan], [0.0, 1.0], [1.0, 1.0]])
    model = baselines.TagMeanRouter().fit_quality(tags, q)
    # a: [0.5, 0.0]; b: [0.0, 1.0] (the NaN is skipped); global: [0.5, 2/3]
    pred = model.predict_quality([["a"], ["a", "b"], ["zzz"], [], ["a", "zzz"]])
    expected = [[0.5, 0.0], [0.25, 0.5], [0.5, 2 / 3], [0.5, 2 / 3], [0.5, 1 / 3]]
    assert np.allclose(pred, expected)


def test_oracle_is_best_quality_at_lowest_cost() -> None:
    quality = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [np.nan, 1.0, 1.0]])
    cost = np.array([[3.0, 1.0, 2.0], [1.0, 1.0, 5.0], [2.0, 4.0, 3.0], [0.0, 2.0, 1.0]])
    ch = reference_routers.OracleRouter().choose(quality, cost)
    assert ch.tolist() == [1, 2, 0, 2]


def test_oracle_dominates_every_single_llm_on_synthetic_data(task) -> None:
    _, test = task
    q, c = test.data.quality, test.data.cost
    oc, oq = metrics.operating_point(reference_routers.OracleRouter().choose(q, c), q, c)
    assert oq == pytest.approx(q.max(axis=1).mean())
    for j in range(len(LLMS)):
        _, sq = metrics.operating_point(np.full(len(q), j), q, c)
        assert oq >= sq
    # Among all choices reaching the per-query best quality, the oracle pays the least.
    best = q >= q.max(axis=1, keepdims=True)
    assert oc == pytest.approx(np.where(best, c, np.inf).min(axis=1).mean())


def test_oracle_curve_starts_at_the_oracle_point_and_bounds_other_routers(task) -> None:
    train, test = task
    q, c = test.data.quality, test.data.cost
    oracle = reference_routers.OracleRouter()
    curve = oracle.curve_choices(q, c)
    assert np.array_equal(curve[0], oracle.choose(q, c))
    pts = np.array([metrics.operating_point(row, q, c) for row in curve])
    lo, hi = c.mean(axis=0).min(), c.mean(axis=0).max()
    q_hat = _fit_predict("knn", train, test)
    knn = metrics.sweep(q_hat, c, q, c, metrics.lambda_grid(c, 60))
    assert metrics.aiq(pts, lo, hi) >= metrics.aiq(knn, lo, hi)
    assert metrics.aiq(pts, lo, hi) > metrics.aiq(pts[:1], lo, hi)


def test_random_router_is_seeded_and_uniform() -> None:
    a = reference_routers.RandomRouter(seed=5).choose(4000, 4)
    assert np.array_equal(a, reference_routers.RandomRouter(seed=5).choose(4000, 4))
    assert not np.array_equal(a, reference_routers.RandomRouter(seed=6).choose(4000, 4))
    assert np.allclose(np.bincount(a, minlength=4) / 4000, 0.25, atol=0.03)


def test_single_llm_router() -> None:
    assert reference_routers.SingleLLMRouter("medium").choose(3, LLMS).tolist() == [2, 2, 2]


def test_linear_cost_model_recovers_linear_prices_and_handles_nan(task) -> None:
    train, _ = task
    cost = train.data.cost.copy()
    cost[::4, 1] = np.nan
    model = baselines.LinearCostModel().fit(train.data.queries["prompt_tokens"], cost)
    pred = model.predict(np.array([100, 400]))
    assert np.allclose(pred, np.array([[100], [400]]) * PRICES, rtol=1e-6)
    # Never below the cheapest cost seen, even far outside the training range.
    assert np.all(model.predict(np.array([0]))[0] >= np.nanmin(cost, axis=0))


def test_make_baselines_names() -> None:
    reg = baselines.make_baselines(seed=0, llms=LLMS)
    expected = {"knn", "mlp", "svm", "mf", "tag_mean", "sw_ranking", "optllm", "oracle", "random"}
    expected |= set(LLMS)
    assert set(reg) == expected
    with pytest.raises(ValueError):
        baselines.make_baselines(llms=["oracle"])


@pytest.mark.parametrize("name", baselines.LEARNED)
def test_predict_before_fit_raises(name: str) -> None:
    model = baselines.make_baselines()[name]
    with pytest.raises(NotFittedError):
        model.predict_quality([["x"]] if name == "tag_mean" else np.zeros((1, 3)))
