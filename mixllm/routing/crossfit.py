"""Cross-fitting for the budget calibration: every training row predicted by predictors
fitted on the other folds (same round counts as the calibrated predictors), one
``LLMFit`` per fold and LLM so a pipeline can fit the folds on separate workers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mixllm.core.config import MixLLMConfig, TrainConfig
from mixllm.core.types import RoutingData
from mixllm.routing.artifact import OfflineEstimate
from mixllm.routing.features import FeatureMap
from mixllm.routing.predictor_fit import LLMFit, LLMModels, llm_fits
from mixllm.routing.predictors import LGBMPredictors, TagPrior

MIN_ROWS_PER_FOLD = 10  # below this a fold's out-of-fold predictions are too few to matter


def fold_count(train: TrainConfig, n: int) -> int:
    """Cross-fitting folds for ``n`` training rows: ``train.calibration_folds``, at most one
    per ``MIN_ROWS_PER_FOLD`` rows; 0 (calibrate on the held-out calibration rows instead)
    when that leaves fewer than 2 or the predictors are not refitted on every row."""
    k = min(train.calibration_folds, n // MIN_ROWS_PER_FOLD)
    return k if k >= 2 and train.refit_full else 0


@dataclass(frozen=True)
class Fold:
    """One fold: the rows it predicts (``held``), their features and tag prior, and the
    per-LLM fits on the other rows."""

    held: np.ndarray
    features: np.ndarray
    prior: np.ndarray | None
    fits: list[LLMFit]


def make_folds(
    config: MixLLMConfig,
    features: FeatureMap,
    data: RoutingData,
    X: np.ndarray,
    tags: list[list[str]],
    tokens: np.ndarray,
    rounds: dict[str, int],
) -> list[Fold]:
    """``fold_count`` folds over ``data`` (seeded by the train seed); raises ``ValueError``
    when ``data`` is too small for two."""
    cfg, n = config, len(data)
    k = fold_count(cfg.train, n)
    if k < 2:
        raise ValueError(f"{n} rows are too few to cross-fit (calibration_folds, refit_full)")
    F = features.predictor_features(features.project(X), tags, tokens)
    fold_of = np.random.default_rng(cfg.train.seed + 2).permutation(n) % k
    out = []
    for f in range(k):
        fit, held = np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)
        prior_fit = prior_held = None
        if cfg.predictor.use_tag_features:
            tp = TagPrior(cfg.predictor.tag_prior_smoothing).fit(
                [tags[i] for i in fit], data.quality[fit], data.llms
            )
            prior_fit = tp.predict([tags[i] for i in fit])
            prior_held = tp.predict([tags[i] for i in held])
        out_tokens = None if data.output_tokens is None else data.output_tokens[fit]
        fits = llm_fits(
            cfg.predictor,
            cfg.train.seed,
            F[fit],
            data.quality[fit],
            out_tokens,
            data.llms,
            prior_fit,
            rounds=rounds,
        )
        out.append(Fold(held, F[held], prior_held, fits))
    return out


def cross_fitted(
    config: MixLLMConfig,
    features: FeatureMap,
    X: np.ndarray,
    llms: Sequence[str],
    fitted: Sequence[tuple[Fold, Sequence[LLMModels]]],
) -> OfflineEstimate:
    """Out-of-fold predictions for every row (quality, output tokens) and Z, from each
    fold's fitted models."""
    P = features.project(X)
    n, k = len(X), len(llms)
    quality, toks = np.full((n, k), np.nan), np.full((n, k), np.nan)
    for fold, parts in fitted:
        pred = LGBMPredictors(config.predictor, config.train.seed).assemble(llms, parts)
        est = pred.predict(fold.features, fold.prior)
        quality[fold.held], toks[fold.held] = est.quality, est.output_tokens
    return OfflineEstimate(quality, toks, P, features.bandit_features(P))
