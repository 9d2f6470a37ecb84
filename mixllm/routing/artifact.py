"""``TrainedRouter``: the immutable result of training, what the registry versions.

It holds the encoder, the tagger, the feature map, the per-LLM predictors (with their tag
prior), the budget calibration (and its calibration rows), the price table and the
service-time models of the LLMs it was trained on, and the LinUCB prior. Nothing in it
changes while serving: LLMs added at runtime, feedback and learned scales live in
``OnlineState`` (``mixllm.routing.state``).
Its save format is documented in ``mixllm.routing.artifact_io``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mixllm.core.config import MixLLMConfig
from mixllm.core.prices import PriceTable
from mixllm.routing.bandit import LinUCB
from mixllm.routing.decision import BudgetCalibration
from mixllm.routing.encoder import Encoder
from mixllm.routing.features import FeatureMap
from mixllm.routing.latency import ServiceTime
from mixllm.routing.predictors import LGBMPredictors, TagPrior
from mixllm.routing.tagging import Tagger


@dataclass(frozen=True)
class OfflineEstimate:
    """Offline predictions over the trained LLMs: quality and output tokens (n, k) (NaN:
    no model), the projection P (n, p) and the bandit context Z (n, d)."""

    quality: np.ndarray
    output_tokens: np.ndarray
    P: np.ndarray
    Z: np.ndarray


@dataclass(frozen=True)
class CalibrationRows:
    """The held-out calibration queries, kept so lambda can be re-calibrated for any
    candidate set and for LLMs added at runtime (``mixllm.routing.budget``).

    ``offline`` holds the predictions of the predictors trained WITHOUT these rows (made
    before the refit on all rows), so a re-calibration sees out-of-sample predictions as
    live routing does. ``tokens`` (n, 2) prompt/output token counts; ``cost`` ($) and
    ``quality`` (n, k trained LLMs) the recorded outcomes, NaN where unobserved.
    """

    offline: OfflineEstimate
    tokens: np.ndarray
    cost: np.ndarray
    quality: np.ndarray

    def __len__(self) -> int:
        return int(self.tokens.shape[0])


@dataclass(frozen=True)
class TrainedRouter:
    """A trained MixLLM router; never mutated after training (see the module docstring)."""

    config: MixLLMConfig
    encoder: Encoder
    tagger: Tagger
    features: FeatureMap
    tag_prior: TagPrior | None
    predictors: LGBMPredictors
    calibration: BudgetCalibration
    prices: PriceTable
    service: Mapping[str, ServiceTime]
    prior_quality: Mapping[str, float]
    llms: tuple[str, ...]
    reference_llm: str
    bandit_prior: LinUCB
    # None for artifacts saved before per-candidate-set calibration: the global one is used
    calibration_rows: CalibrationRows | None = None

    def default_budget(self) -> float:
        """The configured budget in dollars per query."""
        d = self.config.decision
        return self.calibration.budget_usd(d.budget_usd, None if d.budget_usd else d.budget_pct)

    @property
    def lambda_(self) -> float:
        """Lambda at the configured budget."""
        return self.calibration.lambda_for(self.default_budget())

    def embed(self, texts: list[str]) -> tuple[np.ndarray, list[list[str]]]:
        """Tag-enhanced embeddings (n, e) and tags of ``texts`` (one encoder pass)."""
        X = self.encoder.encode(texts, progress=len(texts) > 256)
        return X, self.tagger.tag(texts, X)

    def offline(
        self, X: np.ndarray, tags: Sequence[Sequence[str]], tokens: np.ndarray
    ) -> OfflineEstimate:
        """Predictor outputs for embeddings ``X`` (n, e), tags and (n, 2) token counts."""
        P = self.features.project(X)
        tags = [list(t) for t in tags]
        prior = None if self.tag_prior is None else self.tag_prior.predict(tags)
        est = self.predictors.predict(self.features.predictor_features(P, tags, tokens), prior)
        return OfflineEstimate(est.quality, est.output_tokens, P, self.features.bandit_features(P))
