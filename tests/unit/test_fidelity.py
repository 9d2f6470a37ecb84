"""Prices from training rows only, and the budget-fidelity table."""

from __future__ import annotations

import numpy as np
import pytest
from _routing import LLMS, fast_config, make_task, price_table

from mixllm.core.prices import prices_from_rows
from mixllm.evaluation.fidelity import FidelityRow, budget_fidelity
from mixllm.routing.router import MixLLMRouter


@pytest.mark.timeout(30)
def test_prices_come_from_the_given_rows_only():
    data = make_task(n=200)
    base = price_table()
    train = data.subset(np.arange(100))
    before = prices_from_rows(train, base)
    data.cost[100:] *= 50  # held-out costs must not move the training-row prices
    after = prices_from_rows(data.subset(np.arange(100)), base)
    for m in LLMS:
        assert after[m].input_price == before[m].input_price
        assert before[m].output_price == pytest.approx(base[m].output_price, rel=1e-3)
        assert before[m].concurrency == base[m].concurrency  # speed fields kept
    moved = prices_from_rows(data, base)["premium"].output_price
    assert moved != pytest.approx(before["premium"].output_price, rel=1e-2)


@pytest.mark.timeout(30)
def test_a_budget_above_what_the_set_can_spend_does_not_bind():
    row = FidelityRow("x", 50.0, 1.0, spend_usd=0.4, global_spend_usd=0.4, max_spend_usd=0.5)
    assert not row.binding and row.met
    row = FidelityRow("x", 25.0, 1.0, spend_usd=1.2, global_spend_usd=2.0, max_spend_usd=3.0)
    assert row.binding and not row.met and row.error == pytest.approx(0.2)
    # below what the set spends on its cheapest LLM: infeasible, never "met"
    row = FidelityRow("x", 10.0, 1.0, 1.5, 1.5, max_spend_usd=3.0, min_spend_usd=1.5)
    assert not row.binding and not row.met


@pytest.mark.timeout(120)
def test_fidelity_rows_per_set_and_budget():
    train, test = make_task(n=300), make_task(n=200, seed=1)
    router = MixLLMRouter(fast_config(), prices=price_table()).fit(train)
    sets = {"all": None, "pair": ["premium", "cheap-coder"]}
    rows = budget_fidelity(router, test, sets, (20.0, 60.0))
    assert [(r.candidates, r.budget_pct) for r in rows] == [
        ("all", 20.0),
        ("all", 60.0),
        ("pair", 20.0),
        ("pair", 60.0),
    ]
    ref = router.model.calibration.reference_cost
    for r in rows:
        assert r.budget_usd == pytest.approx(ref * r.budget_pct / 100)
        assert 0 < r.spend_usd <= r.max_spend_usd * (1 + 1e-9)
