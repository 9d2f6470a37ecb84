"""The continual-learning stream on the real RouterBench data (hash encoder, small trees)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mixllm.core.config import MixLLMConfig
from mixllm.core.paths import default_data_path
from mixllm.data.loaders import load_data
from mixllm.routing.router import MixLLMRouter
from mixllm.tools.continual import arrival_order, drop_llms, removed_choices, run_stream
from mixllm.tools.continual_experiments import add_from_prices, with_alpha

pytestmark = [pytest.mark.data, pytest.mark.slow, pytest.mark.timeout(240)]

FAST = {
    "encoder": {"kind": "hash", "finetune": False},
    "predictor": {"n_estimators": 40, "n_bags": 1, "threads": 1},
}


@pytest.fixture(scope="module")
def real():
    path = Path(default_data_path())
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    data = load_data(path)
    order = arrival_order(len(data), seed=0)
    return data.subset(np.sort(order[:500])), data.subset(order[500:800])


def test_removed_and_added_llms_on_the_real_stream(real):
    offline, stream = real
    new = "zero-one-ai/Yi-34B-Chat"
    router = MixLLMRouter(MixLLMConfig.model_validate(FAST)).fit(drop_llms(offline, [new]))
    gone = "mistralai/mixtral-8x7b-chat"
    events = {
        50: ("add", lambda r: add_from_prices(r, new)),
        150: ("remove", lambda r: r.remove_llm(gone)),
    }
    trace = run_stream(
        with_alpha(router, 0.5),
        stream,
        label="real",
        mode="graded",
        budget={"budget_pct": 25},
        events=events,
    )
    assert new not in trace.chosen[:50]  # not a candidate before it was added
    assert new in trace.chosen[50:]  # the wide bound of a newcomer gets it tried
    counts = removed_choices(trace.chosen, {gone: 150})[gone]
    assert counts["before"] > 0  # it was in use: the zero below means something
    assert counts["after"] == 0 and counts["steps_after"] == 150
    assert np.all(trace.regret >= 0) and np.isfinite(trace.cum_regret[-1])
