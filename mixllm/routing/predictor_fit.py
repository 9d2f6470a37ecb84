"""One LLM's LightGBM predictors, fitted on their own: the unit of work that
``LGBMPredictors.fit`` loops over and that a pipeline may run on separate workers.

An ``LLMFit`` holds everything one LLM's fit reads (the shared feature matrix and that
LLM's columns, nothing of the router), ``fit_llm`` turns it into ``LLMModels`` (bagged
quality models, the output-length model, the round counts chosen), and
``LGBMPredictors.assemble`` puts the LLMs' models together. Each fit is seeded by its own
column and bag, so the models do not depend on where or in which order they are fitted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
from tqdm.auto import tqdm

from mixllm.core.config import PredictorConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LLMFit:
    """The inputs of one LLM's predictor fit.

    ``X``: features (n, d), shared by every LLM of a stage; ``quality``, ``output_tokens``
    and ``prior``: that LLM's columns (n,) (NaN: unobserved); ``valid``: rows held out for
    early stopping (bool, n); ``rounds``: round counts to reuse, by model key.
    """

    config: PredictorConfig
    seed: int
    column: int
    llm: str
    X: np.ndarray
    quality: np.ndarray
    output_tokens: np.ndarray | None = None
    prior: np.ndarray | None = None
    valid: np.ndarray | None = None
    rounds: dict[str, int] = field(default_factory=dict)


@dataclass
class LLMModels:
    """One LLM's fitted predictors: bagged quality boosters (empty: too few observations),
    the output-length booster and mean token count (None: too few), the rounds used."""

    llm: str
    quality: list[lgb.Booster]
    length: lgb.Booster | None = None
    mean_tokens: float | None = None
    rounds: dict[str, int] = field(default_factory=dict)


def length_key(llm: str) -> str:
    """The round-count key of ``llm``'s output-length model (its quality model's is ``llm``)."""
    return f"length:{llm}"


def llm_fits(
    config: PredictorConfig,
    seed: int,
    X: np.ndarray,
    quality: np.ndarray,
    output_tokens: np.ndarray | None,
    llms: Sequence[str],
    prior: np.ndarray | None = None,
    valid: np.ndarray | None = None,
    rounds: dict[str, int] | None = None,
) -> list[LLMFit]:
    """One ``LLMFit`` per LLM (column j of the (n, k) ``quality``, ``output_tokens``, ``prior``)."""
    rounds = rounds or {}
    return [
        LLMFit(
            config,
            seed,
            j,
            llm,
            X,
            quality[:, j],
            None if output_tokens is None else output_tokens[:, j],
            None if prior is None else prior[:, j],
            valid,
            {k: rounds[k] for k in (llm, length_key(llm)) if k in rounds},
        )
        for j, llm in enumerate(llms)
    ]


def fit_llm(fit: LLMFit) -> LLMModels:
    """Train one LLM's quality bags and output-length model on its observed rows."""
    rounds = dict(fit.rounds)
    seen = ~np.isnan(fit.quality)
    quality: list[lgb.Booster] = []
    if seen.sum() < max(2 * fit.config.min_child_samples, 10):
        log.warning("LLM %s has %d observations: no quality model", fit.llm, int(seen.sum()))
    else:
        quality = _fit_quality(fit, seen, rounds)
    out = LLMModels(fit.llm, quality, rounds=rounds)
    if fit.output_tokens is not None:
        ok = ~np.isnan(fit.output_tokens)
        if ok.sum() >= 10:
            out.mean_tokens = float(np.nanmean(fit.output_tokens))
            out.length = _fit_length(fit, ok, rounds)
    return out


def _fit_length(fit: LLMFit, ok: np.ndarray, rounds: dict[str, int]) -> lgb.Booster:
    # Poisson regression (log link) predicts the MEAN token count, which is what
    # expected cost needs; regressing log-tokens would predict the geometric mean.
    key, X, toks, valid = length_key(fit.llm), fit.X, fit.output_tokens, fit.valid
    if valid is not None and (ok & valid).sum() >= 10:
        tr, val = ok & ~valid, ok & valid
        model = _train(
            fit.config, X[tr], toks[tr], "poisson", fit.column, valid=(X[val], toks[val], None)
        )
        rounds[key] = model.best_iteration
        return _truncated(model)
    return _train(fit.config, X[ok], toks[ok], "poisson", fit.column, rounds=rounds.get(key))


def _fit_quality(fit: LLMFit, seen: np.ndarray, rounds: dict[str, int]) -> list[lgb.Booster]:
    y_all = np.clip(np.nan_to_num(fit.quality), 0.0, 1.0)
    init_all = None if fit.prior is None else logit(fit.prior)
    valid = fit.valid
    rows = seen if valid is None else seen & ~valid

    def part(mask):
        return fit.X[mask], y_all[mask], None if init_all is None else init_all[mask]

    seeds = [fit.seed + 7919 * b + fit.column for b in range(fit.config.n_bags)]
    models = []
    Xt, yt, it = part(rows)
    if valid is not None and (seen & valid).sum() >= 10:
        first = _train(fit.config, Xt, yt, "cross_entropy", seeds[0], it, valid=part(seen & valid))
        rounds[fit.llm] = first.best_iteration
        models.append(_truncated(first))
        seeds = seeds[1:]
    n_rounds = rounds.get(fit.llm)
    models += [_train(fit.config, Xt, yt, "cross_entropy", s, it, rounds=n_rounds) for s in seeds]
    return models


def _params(c: PredictorConfig, objective: str, seed: int) -> dict:
    return {
        "objective": objective,
        "learning_rate": c.learning_rate,
        "num_leaves": c.num_leaves,
        "max_depth": c.max_depth,
        "min_data_in_leaf": c.min_child_samples,
        "bagging_fraction": c.subsample,
        "bagging_freq": 1 if c.subsample < 1 else 0,
        "feature_fraction": c.colsample_bytree,
        "lambda_l2": c.reg_lambda,
        "max_bin": c.max_bin,
        "num_threads": c.threads,
        "seed": seed,
        "deterministic": True,
        # without a forced layout LightGBM picks col/row-wise by timing, i.e. by CPU load
        "force_col_wise": True,
        "verbose": -1,
    }


def _train(
    config: PredictorConfig,
    X: np.ndarray,
    y: np.ndarray,
    objective: str,
    seed: int,
    init: np.ndarray | None = None,
    valid: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None,
    rounds: int | None = None,
) -> lgb.Booster:
    data = lgb.Dataset(X, y, init_score=init, free_raw_data=True)
    params = _params(config, objective, seed)
    if init is not None:
        params["boost_from_average"] = False  # the init score already is the prior
    if valid is None:
        return lgb.train(params, data, rounds or config.n_estimators)
    Xv, yv, init_v = valid
    dval = lgb.Dataset(Xv, yv, init_score=init_v, reference=data)
    stop = lgb.early_stopping(config.early_stopping_rounds, verbose=False)
    booster = lgb.train(params, data, config.n_estimators, valid_sets=[dval], callbacks=[stop])
    # zero rounds would mean "the prior alone is best": keep one (near no-op) tree
    booster.best_iteration = max(booster.best_iteration, 1)
    return booster


def _truncated(booster: lgb.Booster) -> lgb.Booster:
    """The booster cut at its early-stopping best iteration (no dead trees to evaluate)."""
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), with p clipped away from 0 and 1."""
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def fit_all(fits: Sequence[LLMFit], progress: bool = False) -> list[LLMModels]:
    """``fit_llm`` on each fit in turn: the in-process path (a pipeline fans them out)."""
    return [fit_llm(f) for f in tqdm(fits, desc="predictors", disable=not progress)]
