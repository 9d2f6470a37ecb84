"""MixLLM under the evaluation's ``Router`` protocol: its lambda sweep plus its own
calibrated decisions (default budget and stated budgets) as marked points."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mixllm.core.types import RoutingData
from mixllm.evaluation.protocol import (
    Features,
    ScoreRouterOutput,
    choices_from_llm_names,
    scores_from_predictions,
)
from mixllm.evaluation.report import COST_PCTS


class MixLLMAdapter:
    """A ``MixLLMRouter`` (or anything with its ``predict`` / ``route_batch``) as a Router.

    The sweep uses ``quality + uncertainty_weight * uncertainty - lambda * cost``
    (default weight: the router's ``cfg.bandit.alpha``) without queue/latency penalties;
    the points are the router's own ``route_batch`` decisions at its default budget
    (suffix ``""``) and at each of ``budget_pcts`` (``"@10%"``), limited to ``candidates``
    when given (LLMs outside them never win the sweep either).
    """

    inputs = None  # MixLLM embeds and tags the queries itself

    def __init__(
        self,
        router: Any,
        name: str = "mixllm",
        *,
        budget_pcts: Sequence[float] = COST_PCTS,
        uncertainty_weight: float | None = None,
        candidates: Sequence[str] | None = None,
    ) -> None:
        self.router, self.name = router, name
        self.budget_pcts = tuple(budget_pcts)
        self.uncertainty_weight = uncertainty_weight
        self.candidates = None if candidates is None else list(candidates)

    def fit(self, train: RoutingData, features: Features) -> MixLLMAdapter:
        """Train the router on ``train`` unless it is trained already (the usual case:
        evaluation scores the router a pipeline or ``mixllm train`` produced)."""
        if self.router.model is None:
            self.router.fit(train)
        return self

    def output(self, test: RoutingData, features: Features) -> ScoreRouterOutput:
        """Predicted quality, cost and uncertainty bonus, with the calibrated decisions."""
        weight = self.uncertainty_weight
        if weight is None:
            weight = float(self.router.cfg.bandit.alpha)
        cands = self.candidates
        llms = list(test.llms) if cands is None else [m for m in test.llms if m in cands]
        out = scores_from_predictions(self.router.predict(test.queries), llms, weight)
        limit = {} if cands is None else {"candidates": cands}
        # the frame carries prompt_tokens of the whole prompt: cost predictions need them
        default = self.router.route_batch(test.queries, **limit)
        out.points[""] = choices_from_llm_names(default, llms)
        for pct in self.budget_pcts:
            decisions = self.router.route_batch(test.queries, budget_pct=float(pct), **limit)
            out.points[f"@{pct:g}%"] = choices_from_llm_names(decisions, llms)
        return out
