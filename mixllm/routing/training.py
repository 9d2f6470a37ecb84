"""Training a MixLLM router in stages: tag, fine-tune the encoder on the tags, fit the
per-LLM predictors, calibrate lambda to the budget, refit on every row; then freeze the
parts into a ``TrainedRouter``. The Prefect pipeline runs each stage as its own task."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixllm.core.config import MixLLMConfig
from mixllm.core.errors import InvalidRequestError, NotFittedError
from mixllm.core.paths import mixllm_home
from mixllm.core.prices import PriceTable, load_prices
from mixllm.core.types import RoutingData
from mixllm.routing.artifact import CalibrationRows, TrainedRouter
from mixllm.routing.bandit import LinUCB
from mixllm.routing.crossfit import Fold, cross_fitted, fold_count, make_folds
from mixllm.routing.decision import BudgetCalibration
from mixllm.routing.encoder import Encoder, HashEncoder, SentenceEncoder
from mixllm.routing.estimates import CandidateTable, combine, spec_service_time
from mixllm.routing.features import FeatureMap
from mixllm.routing.latency import ServiceTime, fit_service_time
from mixllm.routing.outputs import as_batch
from mixllm.routing.predictor_fit import LLMFit, LLMModels, fit_all, llm_fits
from mixllm.routing.predictors import LGBMPredictors, TagPrior
from mixllm.routing.state import OnlineState
from mixllm.routing.tagging import LLMTagger, Tagger, TaxonomyTagger

log = logging.getLogger(__name__)


def cache_dir(config: MixLLMConfig) -> Path:
    """Where embeddings and fine-tuned weights are cached."""
    return Path(config.encoder.cache_dir or mixllm_home() / "cache")


def make_encoder(config: MixLLMConfig) -> Encoder:
    """The encoder the config names (not yet fine-tuned)."""
    c = config.encoder
    if c.kind == "hash":
        return HashEncoder()
    return SentenceEncoder(
        c.model_path, c.max_seq_length, c.embed_batch_size, cache_dir(config), c.backend, c.threads
    )


def make_tagger(config: MixLLMConfig) -> Tagger:
    """The tagger the config names; raises ``InvalidRequestError`` on an incomplete LLM one."""
    c = config.tagger
    if c.kind == "llm":
        if not (c.llm_base_url and c.llm_model):
            raise InvalidRequestError("tagger.kind=llm needs llm_base_url and llm_model")
        return LLMTagger(c.llm_base_url, c.llm_model, c.llm_api_key_env, None, c.max_tags_per_facet)
    taxonomy = TaxonomyTagger(None, c.max_tags_per_facet, c.min_similarity)
    if c.kind == "mined":
        from mixllm.routing.mined_tags import MinedTagger

        prior = taxonomy if c.taxonomy_prior else None
        return MinedTagger(c.n_topics, prior=prior, seed=config.train.seed)
    return taxonomy


@dataclass
class Training:
    """The parts of a router while it is being trained (mutable until ``freeze``)."""

    config: MixLLMConfig
    encoder: Encoder
    tagger: Tagger
    prices: PriceTable
    llms: list[str] = field(default_factory=list)
    calibration_idx: np.ndarray | None = None
    features: FeatureMap | None = None
    tag_prior: TagPrior | None = None
    predictors: LGBMPredictors | None = None
    bandit_prior: LinUCB | None = None
    prior_quality: dict[str, float] = field(default_factory=dict)
    service: dict[str, ServiceTime] = field(default_factory=dict)
    reference_llm: str | None = None
    calibration: BudgetCalibration | None = None
    calibration_rows: CalibrationRows | None = None

    @classmethod
    def start(
        cls,
        config: MixLLMConfig,
        tagger: Tagger | None = None,
        encoder: Encoder | None = None,
        prices: PriceTable | None = None,
    ) -> Training:
        """Parts as given, else as the config builds them."""
        return cls(
            config,
            encoder or make_encoder(config),
            tagger or make_tagger(config),
            prices or load_prices(config.prices_path),
        )

    def fit(self, data: RoutingData) -> TrainedRouter:
        """Every stage in order (tag, fine-tune, predictors, calibrate, refit if configured);
        raises ``InvalidRequestError`` on empty data."""
        if len(data) == 0:
            raise InvalidRequestError("cannot fit a router on an empty dataset")
        t0 = time.perf_counter()
        X, tags = self.finetune(data, self.tag(data))
        self.fit_predictors(data, X, tags)
        self.calibrate(data, X, tags)
        if self.config.train.refit_full:
            self.refit(data, X, tags)
        log.info("router fitted on %d queries in %.1fs", len(data), time.perf_counter() - t0)
        return self.freeze()

    def tag(self, data: RoutingData) -> list[list[str]]:
        """Tag the training queries with the base encoder (the fine-tuning targets)."""
        self.prices.validate_llms(data.llms)
        texts = data.queries["query"].tolist()
        X0 = self.encoder.encode(texts, progress=True)
        if hasattr(self.tagger, "mine"):  # tags mined from these queries' meaning
            self.tagger.mine(texts, X0)
        return self.tagger.fit(self.encoder).tag(texts, X0)

    def finetune(
        self, data: RoutingData, tags: list[list[str]]
    ) -> tuple[np.ndarray, list[list[str]]]:
        """Fine-tune the encoder on (query, tag description) pairs; re-embed and re-tag."""
        c = self.config.encoder
        texts = data.queries["query"].tolist()
        if c.finetune and hasattr(self.encoder, "finetune"):
            self.encoder.finetune(
                texts,
                [self.tagger.describe(t) for t in tags],
                epochs=c.epochs,
                batch_size=c.batch_size,
                learning_rate=c.learning_rate,
                max_pairs=c.max_finetune_pairs,
                seed=self.config.train.seed,
            )
            self.tagger.fit(self.encoder)
        X = self.encoder.encode(texts, progress=True)
        return X, self.tagger.tag(texts, X)

    def fit_predictors(self, data: RoutingData, X: np.ndarray, tags: list[list[str]]) -> None:
        """Predictors on all but the calibration rows; bandit prior, priors, service times
        (``predictor_fits``, each LLM fitted in turn, then ``take_predictors``)."""
        self.take_predictors(data, X, fit_all(self.predictor_fits(data, X, tags), progress=True))

    def predictor_fits(
        self, data: RoutingData, X: np.ndarray, tags: list[list[str]]
    ) -> list[LLMFit]:
        """The first half of ``fit_predictors``: calibration split, feature map and tag
        prior; returns one fit per LLM (the calibration rows only stop its boosting early)."""
        cfg = self.config
        fit_idx, self.calibration_idx = _split_calibration(len(data), cfg)
        self.llms = list(data.llms)
        vocab = self.tagger.vocabulary if cfg.predictor.use_tag_features else None
        self.features = FeatureMap.fit(
            X[fit_idx], cfg.predictor.pca_dim, cfg.bandit.dim, vocab, cfg.train.seed
        )
        valid = np.zeros(len(data), dtype=bool)
        valid[self.calibration_idx] = True
        return self._model_fits(data, X, tags, valid=valid)

    def take_predictors(self, data: RoutingData, X: np.ndarray, parts: Sequence[LLMModels]) -> None:
        """The second half of ``fit_predictors``: the LLMs' fitted models (``parts``, from
        ``predictor_fits``) become the predictors; bandit prior, priors, service times."""
        cfg = self.config
        fit_idx = _split_calibration(len(data), cfg)[0]
        self.predictors = self._assembled(parts)
        Z = self.features.bandit_features(self.features.project(X))
        self.bandit_prior = LinUCB(Z.shape[1], cfg.bandit.ridge, cfg.bandit.prior_weight)
        for j, llm in enumerate(data.llms):
            self.bandit_prior.add(llm, Z[fit_idx][~np.isnan(data.quality[fit_idx, j])])
        self.prior_quality = {
            llm: float(np.nanmean(data.quality[:, j])) for j, llm in enumerate(data.llms)
        }
        self.service = {llm: self._service_time(data, j, llm) for j, llm in enumerate(data.llms)}
        means = np.nanmean(data.quality, axis=0)
        self.reference_llm = cfg.decision.reference_llm or data.llms[int(np.nanargmax(means))]

    def _assembled(self, parts: Sequence[LLMModels]) -> LGBMPredictors:
        cfg = self.config
        return LGBMPredictors(cfg.predictor, cfg.train.seed).assemble(self.llms, parts)

    def _model_fits(
        self,
        data: RoutingData,
        X: np.ndarray,
        tags: list[list[str]],
        valid: np.ndarray | None = None,
        rounds: dict[str, int] | None = None,
    ) -> list[LLMFit]:
        """Tag prior (set here) and one LightGBM fit per LLM (``valid`` rows: early
        stopping only; ``rounds``: round counts to reuse)."""
        cfg = self.config
        fit_rows = np.arange(len(data)) if valid is None else np.flatnonzero(~valid)
        self.tag_prior = None
        if cfg.predictor.use_tag_features:
            self.tag_prior = TagPrior(cfg.predictor.tag_prior_smoothing).fit(
                [tags[i] for i in fit_rows], data.quality[fit_rows], data.llms
            )
        F = self.features.predictor_features(
            self.features.project(X), tags, as_batch(data.queries)[1]
        )
        return llm_fits(
            cfg.predictor,
            cfg.train.seed,
            F,
            data.quality,
            data.output_tokens,
            data.llms,
            prior=None if self.tag_prior is None else self.tag_prior.predict(tags),
            valid=valid,
            rounds=rounds,
        )

    def _service_time(self, data: RoutingData, j: int, llm: str) -> ServiceTime:
        if data.latency_s is not None and np.sum(~np.isnan(data.latency_s[:, j])) >= 10:
            toks = (
                data.output_tokens[:, j] if data.output_tokens is not None else np.ones(len(data))
            )
            return fit_service_time(
                data.latency_s[:, j],
                data.queries["prompt_tokens"].to_numpy(dtype=float),
                np.nan_to_num(toks, nan=1.0),
            )
        return spec_service_time(self.prices[llm])

    def calibrate(
        self,
        data: RoutingData,
        X: np.ndarray,
        tags: list[list[str]],
        crossfit: Sequence[tuple[Fold, Sequence[LLMModels]]] | None = None,
    ) -> None:
        """Learn lambda as a function of the budget on out-of-sample predictions.

        With a refit on all rows and enough rows for two folds (``crossfit.fold_count``),
        EVERY row is a calibration row, predicted by models trained on the other folds
        (cross-fitting, same round counts): more rows than the held-out split, from models
        closer to the refitted ones, so the spend at a lambda is measured with less noise
        and less bias. Otherwise the held-out calibration rows are used. ``crossfit``: the
        ``calibration_folds`` with each fold's fitted models (None: fitted here in turn).
        """
        idx = self.calibration_idx
        if idx is None or len(idx) == 0:
            idx = np.arange(len(data))
            log.warning("too few queries for a calibration split: calibrating in-sample")
        ref = self.llms.index(self.reference_llm)
        # a provisional calibration lets the parts be frozen for prediction
        self.calibration = BudgetCalibration(np.zeros(1), np.zeros(1), np.zeros(1), 1.0)
        model = self.freeze()
        state = OnlineState.initial(self.llms, model.bandit_prior)
        if crossfit is None:
            crossfit = [(f, fit_all(f.fits)) for f in self.calibration_folds(data, X, tags)]
        if crossfit:
            idx = np.arange(len(data))
            tokens = as_batch(data.queries)[1]
            off = cross_fitted(self.config, self.features, X, self.llms, crossfit)
        else:
            tokens = as_batch(data.queries.iloc[idx])[1]
            off = model.offline(X[idx], [tags[i] for i in idx], tokens)
        # kept (out-of-sample: made before the refit) so lambda can be re-calibrated for
        # any candidate set at serving time (mixllm.routing.budget)
        self.calibration_rows = CalibrationRows(
            off, tokens, data.cost[idx].copy(), data.quality[idx].copy()
        )
        est = combine(off, state, CandidateTable.build(model, state), tokens)
        self.calibration = BudgetCalibration.fit(
            est.quality,
            est.cost,
            self.config.bandit.alpha * est.uncertainty,
            data.quality[idx],
            data.cost[idx],
            float(np.nanmean(data.cost[idx, ref])),
            self.config.decision.lambda_grid_size,
        )

    def calibration_folds(
        self, data: RoutingData, X: np.ndarray, tags: list[list[str]]
    ) -> list[Fold]:
        """The cross-fitting folds ``calibrate`` fits (each with one fit per LLM); empty
        when it calibrates on the held-out calibration rows instead."""
        k = fold_count(self.config.train, len(data))
        if k < 2:
            return []
        if k < self.config.train.calibration_folds:
            log.info(
                "%d rows: cross-fitting with %d folds instead of calibration_folds=%d",
                len(data),
                k,
                self.config.train.calibration_folds,
            )
        tokens = as_batch(data.queries)[1]
        rounds = self.predictors.rounds_
        return make_folds(self.config, self.features, data, X, tags, tokens, rounds)

    def refit(self, data: RoutingData, X: np.ndarray, tags: list[list[str]]) -> None:
        """Retrain the predictors on every row (same round counts, same lambda)."""
        self.take_refit(fit_all(self.refit_fits(data, X, tags), progress=True))

    def refit_fits(self, data: RoutingData, X: np.ndarray, tags: list[list[str]]) -> list[LLMFit]:
        """The first half of ``refit``: the tag prior on every row; one fit per LLM."""
        return self._model_fits(data, X, tags, rounds=self.predictors.rounds_)

    def take_refit(self, parts: Sequence[LLMModels]) -> None:
        """The second half of ``refit``: the LLMs' refitted models become the predictors."""
        self.predictors = self._assembled(parts)

    def freeze(self) -> TrainedRouter:
        """The immutable trained router; raises ``NotFittedError`` before ``calibrate``."""
        if self.calibration is None or self.predictors is None:
            raise NotFittedError("router is not fitted: call fit() or MixLLMRouter.load()")
        return TrainedRouter(
            config=self.config,
            encoder=self.encoder,
            tagger=self.tagger,
            features=self.features,
            tag_prior=self.tag_prior,
            predictors=self.predictors,
            calibration=self.calibration,
            prices=self.prices,
            service=dict(self.service),
            prior_quality=dict(self.prior_quality),
            llms=tuple(self.llms),
            reference_llm=self.reference_llm,
            bandit_prior=self.bandit_prior,
            calibration_rows=self.calibration_rows,
        )


def _split_calibration(n: int, config: MixLLMConfig) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(config.train.seed + 1)
    perm = rng.permutation(n)
    n_cal = max(1, round(n * config.train.calibration_size)) if n >= 10 else 0
    return np.sort(perm[n_cal:]), np.sort(perm[:n_cal])
