"""A stated budget holds for any candidate set and for LLMs added at runtime.

Predictors are not refit on all rows here, so routing the calibration rows reproduces
exactly the predictions lambda was calibrated on: the spend on them must fit the budget.
"""

from __future__ import annotations

import numpy as np
import pytest
from _routing import LLMS, fast_config, make_task, price_table

from mixllm.core.config import MixLLMConfig
from mixllm.routing.crossfit import fold_count
from mixllm.routing.outputs import as_batch
from mixllm.routing.router import MixLLMRouter
from mixllm.routing.training import _split_calibration

PAIRS = [["premium", "cheap-coder"], ["premium", "cheap-reader"]]


@pytest.fixture(scope="module")
def data():
    return make_task(n=400)


@pytest.fixture(scope="module")
def fitted(data):
    cfg = fast_config(train={"refit_full": False, "calibration_size": 0.5})
    return MixLLMRouter(cfg, prices=price_table()).fit(data)


@pytest.fixture(scope="module")
def calibration_rows(fitted, data):
    """Embeddings, tags, tokens and recorded costs of the rows lambda was calibrated on."""
    _, idx = _split_calibration(len(data), fitted.cfg)
    sub = data.subset(idx)
    texts, tokens = as_batch(sub.queries)
    X, tags = fitted.model.embed(texts)
    return X, tags, tokens, sub.cost


def _spend(router, rows, candidates, pct):
    """Mean recorded cost of the choices; an LLM added at runtime (no record): predicted."""
    X, tags, tokens, recorded = rows
    decisions = router.decide(X, tags, tokens, budget_pct=pct, candidates=candidates)
    spent = []
    for i, d in enumerate(decisions):
        if d.llm in LLMS:
            spent.append(recorded[i, LLMS.index(d.llm)])
        else:
            spent.append(next(c.cost for c in d.candidates if c.llm == d.llm))
    return float(np.mean(spent))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("candidates", [None, *PAIRS])
@pytest.mark.parametrize("pct", [15.0, 40.0, 70.0])
def test_budget_holds_for_every_candidate_set(fitted, calibration_rows, candidates, pct):
    budget = fitted.model.calibration.reference_cost * pct / 100
    spend = _spend(fitted, calibration_rows, candidates, pct)
    assert spend <= budget * (1 + 1e-9)


@pytest.mark.timeout(60)
def test_restricted_set_gets_its_own_lambda(fitted):
    all_cal = fitted.calibration_for()
    pair = np.array([m in PAIRS[0] for m in fitted.all_llms_])
    pair_cal = fitted.calibration_for(pair)
    budget = all_cal.budget_usd(budget_pct=40.0)
    assert pair_cal.lambda_for(budget) != all_cal.lambda_for(budget)
    # cached: the same object until the online state changes
    assert fitted.calibration_for(pair) is pair_cal


@pytest.mark.timeout(60)
@pytest.mark.parametrize("candidates", [None, ["cheap-coder", "newbie"]])
def test_budget_holds_with_an_llm_added_at_runtime(fitted, calibration_rows, candidates):
    import copy

    router = copy.deepcopy(fitted)
    # mid-priced and believed good: with the lambda of the trained LLMs alone it would
    # take most queries and overspend
    router.add_llm("newbie", input_price=1e-6, output_price=2e-6, prior_quality=0.95)
    for pct in (10.0, 30.0):
        budget = router.model.calibration.reference_cost * pct / 100
        assert _spend(router, calibration_rows, candidates, pct) <= budget * (1 + 1e-9)


@pytest.mark.timeout(60)
def test_calibration_rows_survive_save_and_load(fitted, calibration_rows, tmp_path):
    fitted.save(tmp_path / "r")
    loaded = MixLLMRouter.load(tmp_path / "r")
    X, tags, tokens, _ = calibration_rows
    for cands in (None, PAIRS[0]):
        a = fitted.decide(X, tags, tokens, budget_pct=30.0, candidates=cands)
        b = loaded.decide(X, tags, tokens, budget_pct=30.0, candidates=cands)
        assert [d.llm for d in a] == [d.llm for d in b]
        assert a[0].lambda_ == b[0].lambda_


@pytest.mark.timeout(120)
def test_cross_fitted_calibration_covers_every_row_out_of_sample(data):
    cfg = fast_config(train={"refit_full": True, "calibration_folds": 3})
    router = MixLLMRouter(cfg, prices=price_table()).fit(data)
    rows = router.model.calibration_rows
    assert len(rows) == len(data)
    texts, tokens = as_batch(data.queries)
    X, tags = router.model.embed(texts)
    in_sample = router.model.offline(X, tags, tokens).quality
    # predicted by models that never saw the row, not by the refitted ones
    assert not np.allclose(rows.offline.quality, in_sample)
    assert np.allclose(rows.cost, data.cost)


@pytest.mark.parametrize(
    ("folds", "n", "refit_full", "expected"),
    [
        (20, 1543, True, 20),  # enough rows: the configured count
        (20, 90, True, 9),  # at most one fold per 10 rows
        (20, 19, True, 0),  # fewer than two folds: the held-out calibration rows instead
        (1, 1543, True, 0),  # cross-fitting switched off
        (20, 1543, False, 0),  # no refit: the predictors that serve never saw those rows
    ],
)
def test_fold_count_caps_folds_by_rows(folds, n, refit_full, expected):
    train = MixLLMConfig().train.model_copy(
        update={"calibration_folds": folds, "refit_full": refit_full}
    )
    assert fold_count(train, n) == expected


@pytest.mark.timeout(120)
def test_small_data_still_cross_fits_with_fewer_folds(data):
    """The default asks for more folds than small data has rows for: it gets fewer folds,
    not the 20 % held-out split (every row stays a calibration row)."""
    small = data.subset(np.arange(150))
    assert len(small) < 10 * MixLLMConfig().train.calibration_folds
    router = MixLLMRouter(fast_config(), prices=price_table()).fit(small)
    assert len(router.model.calibration_rows) == len(small)
