"""Tiny synthetic routing task for the metrics/baselines/evaluation tests.

Queries come from feature clusters; in each cluster one LLM is a specialist (quality
~0.95) and the others are poor (~0.2), so a router that understands the features can
beat random choice by a wide margin. LLM prices differ by 2x steps and cost is
price * prompt_tokens, so costs are exactly linear in tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mixllm.core.types import RoutingData

LLMS = ["tiny", "small", "medium", "large"]
PRICES = np.array([1.0, 2.0, 4.0, 8.0]) * 1e-6  # $ per prompt token


@dataclass
class Synth:
    """Synthetic data plus the features and tags a router would see."""

    data: RoutingData
    X: np.ndarray
    tags: list[list[str]]
    cluster: np.ndarray


def make_synth(n: int = 360, d: int = 12, seed: int = 0, nan_frac: float = 0.0) -> Synth:
    """``n`` queries in ``len(LLMS)`` clusters; ``nan_frac`` of outcomes left unobserved."""
    rng = np.random.default_rng(seed)
    k = len(LLMS)
    centers = rng.normal(size=(k, d)) * 3.0
    cluster = rng.integers(0, k, size=n)
    X = centers[cluster] + rng.normal(size=(n, d))
    # The cheap LLMs are specialists for two clusters each, the large one is decent on all.
    p = np.full((k, k), 0.2)
    p[np.arange(k), [0, 1, 0, 1]] = 0.95
    p[:, 3] = 0.7
    quality = (rng.random((n, k)) < p[cluster]).astype(float)
    tokens = rng.integers(50, 500, size=n)
    cost = tokens[:, None] * PRICES[None, :]
    if nan_frac:
        quality[rng.random((n, k)) < nan_frac] = np.nan
    queries = pd.DataFrame(
        {
            "sample_id": [f"q{i}" for i in range(n)],
            "query": [f"synthetic question {i} about topic {c}" for i, c in enumerate(cluster)],
            "prompt": [f"prompt {i}" for i in range(n)],
            "source": [f"task{c % 2}" for c in cluster],
            "prompt_tokens": tokens,
        }
    )
    data = RoutingData(queries=queries, llms=list(LLMS), quality=quality, cost=cost)
    tags = [[f"topic:{c}", f"task:{c % 2}"] for c in cluster]
    return Synth(data=data, X=X, tags=tags, cluster=cluster)


def split(s: Synth, n_train: int) -> tuple[Synth, Synth]:
    """First ``n_train`` queries for training, the rest for testing."""
    idx_tr, idx_te = np.arange(n_train), np.arange(n_train, len(s.X))

    def part(idx: np.ndarray) -> Synth:
        return Synth(
            data=s.data.subset(idx),
            X=s.X[idx],
            tags=[s.tags[i] for i in idx],
            cluster=s.cluster[idx],
        )

    return part(idx_tr), part(idx_te)
