"""A tiny routing task with real structure, and a fast router config for unit tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mixllm.core.config import MixLLMConfig
from mixllm.core.prices import LLMSpec, PriceTable
from mixllm.core.types import RoutingData

LLMS = ["cheap-coder", "cheap-reader", "premium"]

TEMPLATES = {
    "code": "Write a Python function to {} a list of numbers.",
    "science": "Which property of {} explains why it conducts heat?\nA) mass\nB) structure",
    "pronoun": "Tom thanked Bill because _ had {} the car for him.",
}
WORDS = [
    "sort",
    "reverse",
    "sum",
    "filter",
    "copper",
    "water",
    "glass",
    "iron",
    "washed",
    "fixed",
    "parked",
    "painted",
    "merge",
    "scan",
    "rank",
    "wood",
]

# quality of each LLM per task: each cheap LLM is good at one task, premium at all
SKILL = {
    "code": [0.9, 0.2, 0.95],
    "science": [0.2, 0.9, 0.95],
    "pronoun": [0.3, 0.3, 0.9],
}


def make_task(n: int = 240, seed: int = 0) -> RoutingData:
    """Queries of three tasks; outcomes drawn from per-task success rates."""
    rng = np.random.default_rng(seed)
    tasks = rng.choice(list(TEMPLATES), size=n)
    texts = [
        TEMPLATES[t].format(WORDS[rng.integers(len(WORDS))]) + f" (#{i})"
        for i, t in enumerate(tasks)
    ]
    p = np.array([SKILL[t] for t in tasks])
    quality = (rng.random(p.shape) < p).astype(float)
    out_tokens = rng.integers(20, 80, size=p.shape).astype(float)
    prompt_tokens = np.array([len(t.split()) + 2 for t in texts])
    prices = price_table()
    cost = np.column_stack(
        [prices[m].cost(prompt_tokens, out_tokens[:, j]) for j, m in enumerate(LLMS)]
    )
    queries = pd.DataFrame(
        {
            "sample_id": [f"q{i}" for i in range(n)],
            "query": texts,
            "prompt": texts,
            "source": tasks,
            "prompt_tokens": prompt_tokens,
        }
    )
    return RoutingData(queries, list(LLMS), quality, cost, output_tokens=out_tokens)


def price_table() -> PriceTable:
    """Prices of the synthetic LLMs: premium costs 20x the cheap ones."""
    cheap = {"input_price": 1e-7, "output_price": 2e-7, "tokens_per_s": 100, "ttft_s": 0.2}
    premium = {"input_price": 2e-6, "output_price": 4e-6, "tokens_per_s": 20, "ttft_s": 0.5}
    specs = {"cheap-coder": cheap, "cheap-reader": cheap, "premium": premium}
    return PriceTable([LLMSpec(name=n, concurrency=2, **spec) for n, spec in specs.items()])


def fast_config(**sections) -> MixLLMConfig:
    """Model-free encoder and small trees: a full fit in about a second."""
    raw = {
        "encoder": {"kind": "hash", "finetune": False},
        "predictor": {"n_estimators": 30, "n_bags": 2, "min_child_samples": 5, "threads": 1},
        "bandit": {"alpha": 0.05},
    }
    for key, values in sections.items():
        raw.setdefault(key, {}).update(values)
    return MixLLMConfig.model_validate(raw)
