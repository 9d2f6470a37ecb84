"""The numpy tree walk must give LightGBM's raw scores exactly."""

import lightgbm as lgb
import numpy as np
import pytest

from mixllm.routing.trees import TreeEnsembles


@pytest.fixture(scope="module")
def boosters():
    rng = np.random.default_rng(0)
    X = rng.random((300, 6))
    y = (X[:, 0] + 0.3 * rng.random(300) > 0.6).astype(float)
    params = {"num_leaves": 7, "max_depth": 4, "verbose": -1, "num_threads": 1}
    return X, [
        lgb.train({**params, "objective": "cross_entropy", "seed": 1}, lgb.Dataset(X, y), 20),
        lgb.train({**params, "objective": "regression", "seed": 2}, lgb.Dataset(X, X[:, 1]), 15),
    ]


def test_batch_matches_lightgbm(boosters):
    X, models = boosters
    want = np.column_stack([m.predict(X, raw_score=True) for m in models])
    np.testing.assert_allclose(TreeEnsembles(models).predict_raw(X), want, rtol=0, atol=1e-12)


def test_single_row_matches_lightgbm(boosters):
    X, models = boosters
    got = TreeEnsembles(models).predict_raw(X[7])
    want = [m.predict(X[7:8], raw_score=True)[0] for m in models]
    assert got.shape == (1, 2)
    np.testing.assert_allclose(got[0], want, atol=1e-12)


def test_single_leaf_trees_are_supported():
    X = np.zeros((20, 2))
    model = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(X, np.ones(20)), 3)
    got = TreeEnsembles([model]).predict_raw(X[:3])
    np.testing.assert_allclose(got[:, 0], model.predict(X[:3], raw_score=True))
