"""The pyfunc wrapper's predict on a real (tiny, hash-encoder) router, without MLflow."""

from __future__ import annotations

import json
import math
import sys

import pandas as pd
import pytest

from mixllm.core.errors import InvalidRequestError
from tests.tiny_data import LLMS, SPECIALISTS, tiny_frame


@pytest.fixture(scope="module")
def router():
    from mixllm.core.config import MixLLMConfig
    from mixllm.data.routerbench import routerbench_from_frame
    from mixllm.routing.router import MixLLMRouter

    config = MixLLMConfig.model_validate(
        {
            "encoder": {"kind": "hash", "finetune": False},
            "predictor": {"n_estimators": 10, "n_bags": 1, "min_child_samples": 3, "threads": 1},
        }
    )
    return MixLLMRouter(config).fit(routerbench_from_frame(tiny_frame(30), source="tiny"))


def test_one_row_per_query_in_input_order_with_per_row_budgets(router) -> None:
    from mixllm.registry.pyfunc import OUTPUT_COLUMNS, predict_frame

    frame = pd.DataFrame(
        {
            "query": [
                "Write a python function to reverse a nested list.",
                "Write a python function to sort a string.",
                "Maria helped Jessica because _ was very generous. Option1: Maria Option2: Jessica",
            ],
            "budget_pct": [math.nan, 400.0, math.nan],
        },
        index=[7, 3, 5],  # the input index must not matter
    )
    out = predict_frame(router, frame)
    assert list(out.columns) == list(OUTPUT_COLUMNS) and len(out) == 3
    assert out.loc[0, "llm"] == SPECIALISTS["mbpp"]
    assert out.loc[2, "llm"] == SPECIALISTS["winogrande"]
    assert out.loc[1, "budget_usd"] > out.loc[0, "budget_usd"] == out.loc[2, "budget_usd"]
    candidates = json.loads(out.loc[0, "candidates"])
    assert [c["llm"] for c in candidates] == LLMS
    chosen = next(c for c in candidates if c["llm"] == out.loc[0, "llm"])
    assert chosen["quality"] == out.loc[0, "quality"] and chosen["cost"] == out.loc[0, "cost"]
    assert isinstance(json.loads(out.loc[0, "tags"]), list)


def test_bad_input_is_an_invalid_request(router) -> None:
    from mixllm.registry.pyfunc import predict_frame

    with pytest.raises(InvalidRequestError, match="'query' column"):
        predict_frame(router, pd.DataFrame({"text": ["hi"]}))
    with pytest.raises(InvalidRequestError, match="budget must be a number"):
        predict_frame(router, pd.DataFrame({"query": ["hi"], "budget": ["cheap"]}))


def test_importing_the_glue_and_commands_imports_neither_mlflow_nor_prefect() -> None:
    import subprocess

    code = (
        "import sys, mixllm.registry.stores, mixllm.registry.publish, mixllm.registry.gate, "
        "mixllm.registry.evalset, mixllm.registry.versions, flows.training_cli; "
        "print('mlflow' in sys.modules, 'prefect' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["False", "False"]
