"""Reference routers that learn nothing: the oracle (best recorded outcome per query), a
random router and the single-LLM routers; each outputs its choices directly."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mixllm.core.types import RoutingData
from mixllm.evaluation.protocol import ChoiceOutput, Features
from mixllm.routing import decision


class _Fixed:
    """Nothing to learn: ``fit`` keeps the router as it is."""

    name = "fixed"
    inputs = None  # reads no features

    def fit(self, train: RoutingData, features: Features) -> _Fixed:
        """Nothing to learn."""
        return self


class OracleRouter(_Fixed):
    """Recorded best quality per query, cheapest among ties (the unreachable upper bound)."""

    name = "oracle"

    def choose(self, quality: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """Per-query index of the best recorded quality, cheapest among ties (lambda 0)."""
        return decision.choose(quality, cost, 0.0)

    def curve_choices(
        self, quality: np.ndarray, cost: np.ndarray, lambdas: np.ndarray | None = None
    ) -> np.ndarray:
        """Choices ``(m, n)`` maximising recorded ``quality - lambda * cost``; row 0 = ``choose``.

        With recorded outcomes this Lagrangian sweep traces the best reachable mean
        quality at every budget, so the oracle gets a curve (an upper bound on every
        router's hull, up to grid resolution) instead of a single point that AIQ would
        score 0 at costs below it.
        """
        lams = decision.lambda_grid(cost, 120) if lambdas is None else np.asarray(lambdas)
        return decision.choose(quality, cost, lams)

    def output(self, test: RoutingData, features: Features) -> ChoiceOutput:
        """The recorded curve; row 0, the classic oracle point, is reported as is."""
        return ChoiceOutput(self.curve_choices(test.quality, test.cost), "oracle", report_index=0)


class RandomRouter(_Fixed):
    """Uniform random LLM per query, seeded: one operating point."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def choose(self, n_queries: int, n_llms: int) -> np.ndarray:
        """``n_queries`` uniform draws from ``range(n_llms)``."""
        return np.random.default_rng(self.seed).integers(0, n_llms, size=n_queries)

    def output(self, test: RoutingData, features: Features) -> ChoiceOutput:
        """One seeded draw per test query."""
        return ChoiceOutput(self.choose(len(test), len(test.llms)), kind="random")


class SingleLLMRouter(_Fixed):
    """Always the same LLM: one operating point."""

    def __init__(self, llm: str) -> None:
        self.name = self.llm = llm

    def choose(self, n_queries: int, llms: Sequence[str]) -> np.ndarray:
        """Index of this LLM in ``llms``, for every query."""
        return np.full(n_queries, list(llms).index(self.llm))

    def output(self, test: RoutingData, features: Features) -> ChoiceOutput:
        """This LLM for every test query."""
        return ChoiceOutput(self.choose(len(test), test.llms), kind="single")
