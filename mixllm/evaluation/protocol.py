"""What a router gives evaluation: the one router protocol and its two output shapes.

Every router, MixLLM and each baseline, is reduced to one of two shapes before scoring,
so all go through the same code:

- ``ScoreRouterOutput``: predicted quality/cost (and an optional bonus) per query and
  LLM; the router's curve is the lambda sweep of ``choose`` (``mixllm.routing.decision``).
- ``ChoiceOutput``: the LLM actually picked per query (one operating point, or several
  rows of choices for several points), e.g. the oracle or MixLLM's calibrated decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mixllm.core.errors import UnknownLLMError
from mixllm.core.types import RoutingData
from mixllm.routing.outputs import Predictions


@dataclass
class ScoreRouterOutput:
    """Predicted quality/cost ``(n, k)`` aligned with the test LLMs; swept over lambdas."""

    quality: np.ndarray
    cost: np.ndarray
    bonus: np.ndarray | None = None
    lambdas: np.ndarray | None = None  # None: metrics.lambda_grid on the predicted cost


@dataclass
class ChoiceOutput:
    """Chosen LLM index per query: ``(n,)`` for one point, ``(m, n)`` for m points."""

    choices: np.ndarray
    kind: str = "choice"  # "single", "oracle", "random" or "choice": only styles the plot
    report_index: int | None = None  # row reported as the operating point (None: 25 % rule)


RouterOutput = ScoreRouterOutput | ChoiceOutput


class Router(Protocol):
    """What every router evaluated here implements: fit on training data, then give its
    output on test data (per-query features are precomputed once and shared)."""

    name: str

    def fit(self, train: RoutingData, features: Any) -> Router:
        """Learn from ``train`` (``features``: its embeddings or tags, router-specific)."""
        ...

    def output(self, test: RoutingData, features: Any) -> RouterOutput:
        """Scores to sweep or choices to score on ``test``."""
        ...


def scores_from_predictions(
    pred: Predictions, llms: Sequence[str], uncertainty_weight: float = 0.0
) -> ScoreRouterOutput:
    """Align a ``Predictions`` to ``llms`` (missing LLMs never win) as a sweepable output."""
    cols = {name: j for j, name in enumerate(pred.llms)}
    n = len(np.asarray(pred.quality))

    def aligned(mat: np.ndarray) -> np.ndarray:
        mat = np.asarray(mat, dtype=float)
        out = np.full((n, len(llms)), np.nan)
        for j, name in enumerate(llms):
            if name in cols:
                out[:, j] = mat[:, cols[name]]
        return out

    bonus = None
    if uncertainty_weight and pred.uncertainty is not None:
        bonus = uncertainty_weight * np.nan_to_num(aligned(pred.uncertainty))
    return ScoreRouterOutput(quality=aligned(pred.quality), cost=aligned(pred.cost), bonus=bonus)


def choices_from_llm_names(picked: Sequence[Any], llms: Sequence[str]) -> ChoiceOutput:
    """Choices from LLM names or objects with an ``.llm`` name (e.g. router Decisions)."""
    index = {name: j for j, name in enumerate(llms)}
    names = [getattr(p, "llm", p) for p in picked]
    unknown = sorted({n for n in names if n not in index})
    if unknown:
        raise UnknownLLMError(f"routed to LLMs absent from the test data: {', '.join(unknown)}")
    return ChoiceOutput(np.array([index[n] for n in names], dtype=int))
