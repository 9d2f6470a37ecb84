"""What a router gives evaluation: the one router protocol and its two output shapes.

Every router, MixLLM (``mixllm_adapter``) and each baseline, implements ``Router``: ``fit``
on the training split, then ``output`` on the test split, each given the per-query
``Features`` computed once for all. An output has one of two shapes, so all are scored by
the same code:

- ``ScoreRouterOutput``: predicted quality/cost (and an optional bonus) per query and
  LLM; the router's curve is the lambda sweep of ``choose`` (``mixllm.routing.decision``).
- ``ChoiceOutput``: the LLM actually picked per query (one operating point, or several
  rows of choices for several points), e.g. the oracle or a single LLM.

Either may carry ``points``: decisions the router itself made at stated budgets (MixLLM's
calibrated ones), reported as marked points beside its curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mixllm.core.errors import UnknownLLMError
from mixllm.core.types import RoutingData
from mixllm.routing.outputs import Predictions


@dataclass(frozen=True)
class Features:
    """Per-query inputs of one split, computed once and shared by every router.

    ``embeddings``: plain (not tag-enhanced) query embeddings (n, e); ``tags``: the
    router's tags per query; ``prompt_embeddings``: of the RAW prompt (RouterBench's MLP
    input); ``cost``: the cost estimate (n, k) routers decide with (test split only).
    A field is None when not computed; a router needing it is then left out.
    """

    embeddings: np.ndarray | None = None
    tags: Sequence[Sequence[str]] | None = None
    prompt_embeddings: np.ndarray | None = None
    cost: np.ndarray | None = None

    def has(self, name: str | None) -> bool:
        """Whether the input ``name`` is there (``None``, no input at all: always)."""
        return name is None or getattr(self, name) is not None


@dataclass
class ScoreRouterOutput:
    """Predicted quality/cost ``(n, k)`` aligned with the test LLMs; swept over lambdas."""

    quality: np.ndarray
    cost: np.ndarray
    bonus: np.ndarray | None = None
    lambdas: np.ndarray | None = None  # None: decision.lambda_grid on the predicted cost
    # the router's own decisions: name suffix -> choices ("" is its reported point,
    # "@10%" a marked point at a 10 % budget)
    points: dict[str, ChoiceOutput] = field(default_factory=dict, kw_only=True)


@dataclass
class ChoiceOutput:
    """Chosen LLM index per query: ``(n,)`` for one point, ``(m, n)`` for m points."""

    choices: np.ndarray
    kind: str = "choice"  # "single", "oracle", "random" or "choice": only styles the plot
    report_index: int | None = None  # row reported as the operating point (None: 25 % rule)
    points: dict[str, ChoiceOutput] = field(default_factory=dict, kw_only=True)


RouterOutput = ScoreRouterOutput | ChoiceOutput


class Router(Protocol):
    """What every router evaluated here implements: fit on the training split, then give
    its output on the test split (per-query ``Features`` are computed once and shared)."""

    name: str
    inputs: str | None  # the Features field it reads (None: none); left out when absent

    def fit(self, train: RoutingData, features: Features) -> Router:
        """Learn from ``train`` (its recorded outcomes) and its ``features``."""
        ...

    def output(self, test: RoutingData, features: Features) -> RouterOutput:
        """Scores to sweep or choices to score on ``test``."""
        ...


def named_points(name: str, out: RouterOutput) -> dict[str, ChoiceOutput]:
    """The router's own decisions in ``out`` under their report names (``name`` + suffix)."""
    return {name + suffix: choices for suffix, choices in out.points.items()}


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
