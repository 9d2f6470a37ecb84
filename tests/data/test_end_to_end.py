"""Train, route and evaluate on a slice of the real RouterBench data with the real encoder."""

from __future__ import annotations

import numpy as np
import pytest

from mixllm.core.config import MixLLMConfig
from mixllm.core.paths import default_data_path
from mixllm.data.loaders import load_data
from mixllm.evaluation.evaluate import evaluate_router
from mixllm.routing.router import MixLLMRouter

pytestmark = [pytest.mark.data, pytest.mark.slow]


@pytest.fixture(scope="module")
def split_slice(tmp_path_factory):
    path = default_data_path()
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set MIXLLM_DATA or provide ../shared/data)")
    data = load_data(path)
    rng = np.random.default_rng(0)
    keep = np.concatenate(
        [
            rng.choice(np.flatnonzero(data.queries["source"] == s), 80, replace=False)
            for s in sorted(data.queries["source"].unique())
        ]
    )
    return data.subset(np.sort(keep)).split(0.3, 0)


@pytest.fixture(scope="module")
def router(split_slice, tmp_path_factory):
    cfg = MixLLMConfig.model_validate(
        {
            "encoder": {
                "epochs": 1,
                "max_finetune_pairs": 64,
                "batch_size": 16,
                "cache_dir": str(tmp_path_factory.mktemp("cache")),
            },
            "predictor": {"n_estimators": 40, "n_bags": 2},
        }
    )
    return MixLLMRouter(cfg).fit(split_slice[0])


def test_routes_a_real_query_with_sensible_tags(router):
    d = router.route("Write a python function to find the maximum of three numbers.")
    assert "task:code_generation" in d.tags
    assert d.llm in router.llms_ and len(d.candidates) == 11


def test_evaluation_ranks_mixllm_with_the_baselines(router, split_slice):
    train, test = split_slice
    report = evaluate_router(router, train, test, progress=False).to_json()
    mix = report["routers"]["mixllm"]
    assert report["reference_llm"] == "gpt-4-1106-preview"
    # a router on real data must at least beat picking an LLM at random on the AIQ curve
    assert mix["aiq"] > report["routers"]["random"]["aiq"]
    assert report["routers"]["oracle"]["aiq"] >= mix["aiq"]


def test_saved_router_reloads_with_identical_decisions(router, split_slice, tmp_path):
    router.save(tmp_path / "r")
    again = MixLLMRouter.load(tmp_path / "r")
    texts = split_slice[1].queries["query"].tolist()[:20]
    assert [d.llm for d in again.route_batch(texts)] == [d.llm for d in router.route_batch(texts)]
