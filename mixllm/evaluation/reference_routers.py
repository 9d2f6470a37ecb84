"""Reference routers that learn nothing: the oracle (best recorded outcome per query), a
random router and the single-LLM routers; each returns its choices directly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mixllm.evaluation import metrics


class OracleRouter:
    """Recorded best quality per query, cheapest among ties (the unreachable upper bound)."""

    name = "oracle"

    def fit(self, *args: Any, **kw: Any) -> OracleRouter:
        """Nothing to learn."""
        return self

    def choose(self, quality: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """Per-query index of the best recorded quality, cheapest among ties."""
        q = np.where(np.isnan(quality), -np.inf, quality)
        best = q.max(axis=1, keepdims=True)
        c = np.where(np.isnan(cost), np.inf, cost)
        return np.argmin(np.where(q >= best, c, np.inf), axis=1)

    def curve_choices(
        self, quality: np.ndarray, cost: np.ndarray, lambdas: np.ndarray | None = None
    ) -> np.ndarray:
        """Choices ``(m, n)`` maximising recorded ``quality - lambda * cost``; row 0 = ``choose``.

        With recorded outcomes this Lagrangian sweep traces the best reachable mean
        quality at every budget, so the oracle gets a curve (an upper bound on every
        router's hull, up to grid resolution) instead of a single point that AIQ would
        score 0 at costs below it.
        """
        lams = metrics.lambda_grid(cost, 120) if lambdas is None else np.asarray(lambdas)
        return metrics.choose(quality, cost, lams)


class RandomRouter:
    """Uniform random LLM per query, seeded: one operating point."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, *args: Any, **kw: Any) -> RandomRouter:
        """Nothing to learn."""
        return self

    def choose(self, n_queries: int, n_llms: int) -> np.ndarray:
        """``n_queries`` uniform draws from ``range(n_llms)``."""
        return np.random.default_rng(self.seed).integers(0, n_llms, size=n_queries)


class SingleLLMRouter:
    """Always the same LLM: one operating point."""

    def __init__(self, llm: str) -> None:
        self.name = self.llm = llm

    def fit(self, *args: Any, **kw: Any) -> SingleLLMRouter:
        """Nothing to learn."""
        return self

    def choose(self, n_queries: int, llms: Sequence[str]) -> np.ndarray:
        """Index of this LLM in ``llms``, for every query."""
        return np.full(n_queries, list(llms).index(self.llm))
