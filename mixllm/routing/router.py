"""MixLLMRouter: the scikit-learn-style estimator that glues tagger, encoder, predictors,
bandit and decision maker together."""

from __future__ import annotations

import json
import logging
import pickle
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mixllm.core.config import MixLLMConfig
from mixllm.core.errors import InvalidRequestError, NotFittedError, UnknownLLMError
from mixllm.core.paths import mixllm_home
from mixllm.core.prices import LLMSpec, PriceTable, load_prices
from mixllm.core.tokens import count_tokens_many
from mixllm.core.types import RoutingData
from mixllm.routing.bandit import LinUCB
from mixllm.routing.decision import BudgetCalibration, scores
from mixllm.routing.encoder import Encoder, HashEncoder, SentenceEncoder, load_encoder, save_encoder
from mixllm.routing.latency import (
    QueueState,
    ServiceTime,
    expected_wait,
    fit_service_time,
    latency_penalty,
)
from mixllm.routing.predictors import LGBMPredictors, TagPrior
from mixllm.routing.tagging import LLMTagger, Tagger, TaxonomyTagger, tag_matrix

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class CandidateScore:
    """One candidate LLM's predictions for a query."""

    llm: str
    quality: float
    cost: float
    latency_s: float
    uncertainty: float
    score: float


@dataclass
class Decision:
    """The routing decision for one query."""

    llm: str
    tags: list[str]
    candidates: list[CandidateScore]
    lambda_: float
    budget_usd: float
    prompt_tokens: int = 0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready view."""
        out = asdict(self)
        out["lambda"] = out.pop("lambda_")
        return out


@dataclass
class Predictions:
    """Per-query, per-LLM predictions (n, k) for evaluation and inspection."""

    llms: list[str]
    quality: np.ndarray
    cost: np.ndarray
    uncertainty: np.ndarray
    latency_s: np.ndarray
    tags: list[list[str]]


def as_batch(queries: pd.DataFrame | Sequence[str] | str) -> tuple[list[str], np.ndarray]:
    """Texts and their (n, 2) token counts: prompt tokens (paid for) and routed-query tokens.

    A frame may carry ``prompt_tokens`` (or a ``prompt`` column to count them from);
    plain strings are their own prompt.
    """
    if isinstance(queries, str):
        queries = [queries]
    if isinstance(queries, pd.DataFrame):
        if "query" not in queries:
            raise InvalidRequestError("queries frame needs a 'query' column")
        texts = queries["query"].tolist()
    else:
        texts = list(queries)
    bad = [i for i, q in enumerate(texts) if not isinstance(q, str) or not q.strip()]
    if bad:
        raise InvalidRequestError(f"empty or non-text query at position(s) {bad[:5]}")
    q_tokens = count_tokens_many(texts).astype(float)
    if isinstance(queries, pd.DataFrame) and "prompt_tokens" in queries:
        prompt = queries["prompt_tokens"].to_numpy(dtype=float)
    elif isinstance(queries, pd.DataFrame) and "prompt" in queries:
        prompt = count_tokens_many(queries["prompt"].astype(str).tolist()).astype(float)
    else:
        prompt = q_tokens
    return texts, np.column_stack([prompt, q_tokens])


class MixLLMRouter:
    """Routes each query to the LLM with the best quality - lambda*cost trade-off (MixLLM).

    Parts are swappable: pass a ``tagger`` (``Tagger``), an ``encoder`` (``Encoder``) or a
    ``prices`` table, or let the config build the defaults. ``fit`` is the composition of the
    public stages ``fit_tagger``, ``fit_encoder``, ``fit_predictors`` and ``calibrate``, which
    the Prefect pipeline runs as separate tasks.
    """

    def __init__(
        self,
        config: MixLLMConfig | None = None,
        tagger: Tagger | None = None,
        encoder: Encoder | None = None,
        prices: PriceTable | None = None,
    ):
        self.config = config
        self.tagger = tagger
        self.encoder = encoder
        self.prices = prices

    # -- parts -------------------------------------------------------------------------
    @property
    def cfg(self) -> MixLLMConfig:
        """The effective config."""
        return self.config or MixLLMConfig()

    def _cache_dir(self) -> Path:
        return Path(self.cfg.encoder.cache_dir or mixllm_home() / "cache")

    def _make_encoder(self) -> Encoder:
        c = self.cfg.encoder
        if c.kind == "hash":
            return HashEncoder()
        return SentenceEncoder(
            c.model_path, c.max_seq_length, c.embed_batch_size, self._cache_dir()
        )

    def _make_tagger(self) -> Tagger:
        c = self.cfg.tagger
        if c.kind == "llm":
            if not (c.llm_base_url and c.llm_model):
                raise InvalidRequestError("tagger.kind=llm needs llm_base_url and llm_model")
            return LLMTagger(
                c.llm_base_url, c.llm_model, c.llm_api_key_env, None, c.max_tags_per_facet
            )
        return TaxonomyTagger(None, c.max_tags_per_facet, c.min_similarity)

    # -- fitting stages ------------------------------------------------------------------
    def fit_tagger(self, data: RoutingData) -> list[list[str]]:
        """Tag the training queries with the base encoder (the fine-tuning targets)."""
        self.encoder_ = self.encoder or self._make_encoder()
        self.tagger_ = self.tagger or self._make_tagger()
        self.prices_ = self.prices or load_prices(self.cfg.prices_path)
        self.prices_.validate_llms(data.llms)
        texts = data.queries["query"].tolist()
        X0 = self.encoder_.encode(texts, progress=True)
        return self.tagger_.fit(self.encoder_).tag(texts, X0)

    def fit_encoder(
        self, data: RoutingData, tags: list[list[str]]
    ) -> tuple[np.ndarray, list[list[str]]]:
        """Fine-tune the encoder on (query, tag description) pairs; re-embed and re-tag."""
        c = self.cfg.encoder
        texts = data.queries["query"].tolist()
        if c.finetune and hasattr(self.encoder_, "finetune"):
            self.encoder_.finetune(
                texts,
                [self.tagger_.describe(t) for t in tags],
                epochs=c.epochs,
                batch_size=c.batch_size,
                learning_rate=c.learning_rate,
                max_pairs=c.max_finetune_pairs,
                seed=self.cfg.train.seed,
            )
            self.tagger_.fit(self.encoder_)
        X = self.encoder_.encode(texts, progress=True)
        return X, self.tagger_.tag(texts, X)

    def _split_calibration(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.cfg.train.seed + 1)
        perm = rng.permutation(n)
        n_cal = max(1, round(n * self.cfg.train.calibration_size)) if n >= 10 else 0
        return np.sort(perm[n_cal:]), np.sort(perm[:n_cal])

    def fit_predictors(
        self, data: RoutingData, X: np.ndarray, tags: list[list[str]]
    ) -> MixLLMRouter:
        """Train per-LLM predictors on all but the calibration rows; set up bandit and latency."""
        fit_idx, self.calibration_idx_ = self._split_calibration(len(data))
        self.llms_ = list(data.llms)
        self.all_llms_ = list(data.llms)
        self._fit_projection(X[fit_idx])
        P = self._project(X)
        F = self._features(P, tags, as_batch(data.queries)[1])
        valid = np.zeros(len(data), dtype=bool)
        valid[self.calibration_idx_] = True
        self._fit_models(data, F, tags, np.arange(len(data)), valid=valid)
        Z = self._bandit_features(P)
        self.bandit_ = LinUCB(Z.shape[1], self.cfg.bandit.ridge, self.cfg.bandit.prior_weight)
        for j, llm in enumerate(data.llms):
            self.bandit_.add(llm, Z[fit_idx][~np.isnan(data.quality[fit_idx, j])])
        self.prior_quality_ = {
            llm: float(np.nanmean(data.quality[:, j])) for j, llm in enumerate(data.llms)
        }
        self.cost_scale_ = dict.fromkeys(data.llms, 1.0)
        self.latency_scale_ = dict.fromkeys(data.llms, 1.0)
        self.service_ = {llm: self._service_time(data, j, llm) for j, llm in enumerate(data.llms)}
        means = np.nanmean(data.quality, axis=0)
        self.reference_llm_ = self.cfg.decision.reference_llm or data.llms[int(np.nanargmax(means))]
        return self

    def _fit_models(
        self,
        data: RoutingData,
        F: np.ndarray,
        tags: list[list[str]],
        idx: np.ndarray,
        valid: np.ndarray | None = None,
        rounds: dict[str, int] | None = None,
    ) -> None:
        """Tag prior and LightGBM predictors on rows ``idx`` (``valid`` rows: early stopping)."""
        sub_tags = [tags[i] for i in idx]
        fit_rows = idx if valid is None else idx[~valid[idx]]
        self.tag_prior_ = None
        if self.cfg.predictor.use_tag_features:
            self.tag_prior_ = TagPrior(self.cfg.predictor.tag_prior_smoothing).fit(
                [tags[i] for i in fit_rows], data.quality[fit_rows], data.llms
            )
        self.predictors_ = LGBMPredictors(self.cfg.predictor, self.cfg.train.seed).fit(
            F[idx],
            data.quality[idx],
            None if data.output_tokens is None else data.output_tokens[idx],
            data.llms,
            progress=True,
            prior=None if self.tag_prior_ is None else self.tag_prior_.predict(sub_tags),
            valid=None if valid is None else valid[idx],
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
        spec = self.prices_[llm]
        return ServiceTime(spec.ttft_s, 0.0, 1.0 / spec.tokens_per_s)

    def calibrate(self, data: RoutingData, X: np.ndarray, tags: list[list[str]]) -> MixLLMRouter:
        """Learn lambda as a function of the budget on the held-out calibration rows."""
        idx = self.calibration_idx_
        if len(idx) == 0:
            idx = np.arange(len(data))
            log.warning("too few queries for a calibration split: calibrating in-sample")
        tokens = as_batch(data.queries.iloc[idx])[1]
        q, c, u, _ = self._predict_arrays(X[idx], [tags[i] for i in idx], tokens)
        ref = self.all_llms_.index(self.reference_llm_)
        ref_cost = float(np.nanmean(data.cost[idx, ref]))
        self.calibration_ = BudgetCalibration.fit(
            q,
            c,
            u,
            data.quality[idx],
            data.cost[idx],
            self.cfg.bandit.alpha,
            ref_cost,
            self.cfg.decision.lambda_grid_size,
        )
        self.lambda_ = self.calibration_.lambda_for(self._default_budget())
        return self

    def refit(self, data: RoutingData, X: np.ndarray, tags: list[list[str]]) -> MixLLMRouter:
        """Retrain the predictors on every row once lambda is calibrated (same lambda)."""
        F = self._features(self._project(X), tags, as_batch(data.queries)[1])
        rounds = self.predictors_.rounds_
        self._fit_models(data, F, tags, np.arange(len(data)), rounds=rounds)
        return self

    def fit(self, data: RoutingData) -> MixLLMRouter:
        """Tag, embed (tag-enhanced), train predictors, calibrate lambda, refit on all rows."""
        if len(data) == 0:
            raise InvalidRequestError("cannot fit a router on an empty dataset")
        t0 = time.perf_counter()
        tags0 = self.fit_tagger(data)
        X, tags = self.fit_encoder(data, tags0)
        self.fit_predictors(data, X, tags)
        self.calibrate(data, X, tags)
        if self.cfg.train.refit_full:
            self.refit(data, X, tags)
        log.info("router fitted on %d queries in %.1fs", len(data), time.perf_counter() - t0)
        return self

    # -- features --------------------------------------------------------------------------
    def _fit_projection(self, X: np.ndarray) -> None:
        from sklearn.decomposition import PCA

        n_comp = int(min(self.cfg.predictor.pca_dim, X.shape[1], max(2, X.shape[0] - 1)))
        self.pca_ = PCA(n_components=n_comp, random_state=self.cfg.train.seed).fit(X)
        self._pca_scale = np.sqrt(self.pca_.explained_variance_[: self.cfg.bandit.dim]) + 1e-9

    def _project(self, X: np.ndarray) -> np.ndarray:
        # plain matmul: sklearn's transform() validation costs more than the maths here
        return (X - self.pca_.mean_) @ self.pca_.components_.T

    def _features(self, P: np.ndarray, tags: list[list[str]], tokens: np.ndarray) -> np.ndarray:
        parts = [P]
        if self.cfg.predictor.use_tag_features:
            parts.append(tag_matrix(tags, self.tagger_.vocabulary))
        parts.append(np.log1p(tokens))
        return np.hstack(parts).astype(np.float64)

    def _bandit_features(self, P: np.ndarray) -> np.ndarray:
        comps = P[:, : self.cfg.bandit.dim] / self._pca_scale
        comps /= np.sqrt(comps.shape[1])  # whitened components, unit norm on average
        return np.hstack([comps, np.ones((P.shape[0], 1))])

    # -- prediction ------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "calibration_"):
            raise NotFittedError("router is not fitted: call fit() or MixLLMRouter.load()")

    def _predict_arrays(self, X, tags, tokens):
        """(quality, cost, uncertainty, output_tokens), each (n, k) over ``all_llms_``.

        ``tokens`` is (n, 2): prompt tokens and query tokens (see ``as_batch``).
        """
        P = self._project(X)
        prior = None if self.tag_prior_ is None else self.tag_prior_.predict(tags)
        est = self.predictors_.predict(self._features(P, tags, tokens), prior)
        n, k_fit = est.quality.shape
        k = len(self.all_llms_)
        quality = np.full((n, k), np.nan)
        out_tokens = np.full((n, k), np.nan)
        quality[:, :k_fit] = est.quality
        out_tokens[:, :k_fit] = est.output_tokens
        if np.isnan(quality[0]).any() or np.isnan(out_tokens[0]).any():
            self._fill_unmodelled(quality, out_tokens)
        delta, width = self.bandit_.correction(self._bandit_features(P))
        quality = np.clip(quality + delta, 0.0, 1.0)
        cost = self.prices_.cost_matrix(self.all_llms_, tokens[:, 0], out_tokens)
        cost *= np.array([self.cost_scale_[m] for m in self.all_llms_])
        return quality, cost, width, out_tokens

    def _fill_unmodelled(self, quality: np.ndarray, out_tokens: np.ndarray) -> None:
        """LLMs without a model (added at runtime, too little data) get their priors."""
        finite = np.isfinite(out_tokens)
        default_tokens = float(out_tokens[finite].mean()) if finite.any() else 100.0
        for j, llm in enumerate(self.all_llms_):
            if np.isnan(quality[:, j]).all():
                quality[:, j] = self.prior_quality_.get(llm, self.cfg.bandit.new_llm_prior_quality)
            if np.isnan(out_tokens[:, j]).all():
                out_tokens[:, j] = default_tokens

    def _service_matrix(self, prompt: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """(n, k) predicted service seconds: one vectorized expression for all LLMs."""
        st = [self.service_[m] for m in self.all_llms_]
        scale = np.array([self.latency_scale_[m] for m in self.all_llms_])
        ttft = np.array([s.ttft_s for s in st])
        per_in = np.array([s.s_per_prompt_token for s in st])
        per_out = np.array([s.s_per_output_token for s in st])
        return (ttft + prompt[:, None] * per_in + tokens * per_out) * scale

    def predict(self, queries: pd.DataFrame | Sequence[str]) -> Predictions:
        """Predicted quality, cost, uncertainty and service time of every LLM for each query."""
        self._check_fitted()
        texts, tokens = as_batch(queries)
        X = self.encoder_.encode(texts, progress=len(texts) > 256)
        tags = self.tagger_.tag(texts, X)
        q, c, u, toks = self._predict_arrays(X, tags, tokens)
        lat = self._service_matrix(tokens[:, 0], toks)
        return Predictions(list(self.all_llms_), q, c, u, lat, tags)

    # -- routing ---------------------------------------------------------------------------
    def _default_budget(self) -> float:
        d = self.cfg.decision
        return self.calibration_.budget_usd(d.budget_usd, None if d.budget_usd else d.budget_pct)

    def _candidate_mask(self, candidates: Sequence[str] | None) -> np.ndarray:
        active = set(self.llms_)
        if candidates is None:
            names = active
        else:
            unknown = [c for c in candidates if c not in active]
            if unknown:
                raise UnknownLLMError(
                    f"unknown or removed LLM(s) in candidates: {', '.join(unknown)}; "
                    f"active: {', '.join(self.llms_)}"
                )
            names = set(candidates)
        if not names:
            raise InvalidRequestError("no candidate LLM to route to")
        return np.array([m in names for m in self.all_llms_])

    def route(
        self,
        query: str,
        *,
        budget_usd: float | None = None,
        budget_pct: float | None = None,
        candidates: Sequence[str] | None = None,
        queue: dict[str, QueueState] | None = None,
        prompt_tokens: int | None = None,
    ) -> Decision:
        """Pick the LLM for one query under a budget (default: the configured one)."""
        self._check_fitted()
        texts, tokens = as_batch(query)
        if prompt_tokens is not None:
            tokens[0, 0] = float(prompt_tokens)
        return self._route(texts, tokens, budget_usd, budget_pct, candidates, queue)[0]

    def route_batch(
        self,
        queries: pd.DataFrame | Sequence[str],
        *,
        budget_usd: float | None = None,
        budget_pct: float | None = None,
        candidates: Sequence[str] | None = None,
        queue: dict[str, QueueState] | None = None,
    ) -> list[Decision]:
        """Pick the LLM for each query (one encoder pass for the batch)."""
        self._check_fitted()
        texts, tokens = as_batch(queries)
        return self._route(texts, tokens, budget_usd, budget_pct, candidates, queue)

    def _route(self, texts, tokens, budget_usd, budget_pct, candidates, queue) -> list[Decision]:
        X = self.encoder_.encode(texts)
        tags = self.tagger_.tag(texts, X)
        return self.decide(
            X,
            tags,
            tokens,
            budget_usd=budget_usd,
            budget_pct=budget_pct,
            candidates=candidates,
            queue=queue,
        )

    def decide(
        self,
        X: np.ndarray,
        tags: list[list[str]],
        tokens: np.ndarray,
        *,
        budget_usd: float | None = None,
        budget_pct: float | None = None,
        candidates: Sequence[str] | None = None,
        queue: dict[str, QueueState] | None = None,
    ) -> list[Decision]:
        """Decisions from precomputed embeddings, tags and (n, 2) token counts (see as_batch).

        This is everything after the encoder: the part timed as "routing decision".
        """
        if budget_usd is None and budget_pct is None:
            budget = self._default_budget()
        else:
            budget = self.calibration_.budget_usd(budget_usd, budget_pct)
        lam = self.calibration_.lambda_for(budget)
        mask = self._candidate_mask(candidates)
        q, c, u, toks = self._predict_arrays(X, tags, tokens)
        lat = self._service_matrix(tokens[:, 0], toks)
        lat = lat + self._waits(queue, lat)
        pen = latency_penalty(lat, self.cfg.latency) if queue is not None else None
        s = scores(q, c, u, lam, self.cfg.bandit.alpha, pen)
        s[:, ~mask] = -np.inf
        picks = np.argmax(s, axis=1)
        out = []
        for i, j in enumerate(picks):
            cands = [
                CandidateScore(
                    m,
                    float(q[i, k]),
                    float(c[i, k]),
                    float(lat[i, k]),
                    float(u[i, k]),
                    float(s[i, k]),
                )
                for k, m in enumerate(self.all_llms_)
                if mask[k]
            ]
            out.append(
                Decision(
                    self.all_llms_[j],
                    tags[i],
                    cands,
                    lam,
                    budget,
                    int(tokens[i, 0]),
                )
            )
        return out

    def _waits(self, queue: dict[str, QueueState] | None, service: np.ndarray) -> np.ndarray:
        if not queue:
            return np.zeros_like(service)
        mean_service = service.mean(axis=0)
        return np.array(
            [
                expected_wait(queue.get(m), float(mean_service[j]))
                for j, m in enumerate(self.all_llms_)
            ]
        )[None, :]

    # -- continual learning ------------------------------------------------------------
    def update(
        self,
        query: str,
        llm: str,
        *,
        quality: float | None = None,
        thumbs_up: bool | None = None,
        cost: float | None = None,
        latency_s: float | None = None,
        prompt_tokens: int | None = None,
    ) -> None:
        """Learn from one observed outcome (graded quality or thumbs up/down, cost, latency)."""
        self._check_fitted()
        if llm not in self.all_llms_:
            raise UnknownLLMError(f"unknown LLM {llm!r}; known: {', '.join(self.all_llms_)}")
        if quality is None and thumbs_up is not None:
            quality = 1.0 if thumbs_up else 0.0
        if quality is not None and not 0.0 <= quality <= 1.0:
            raise InvalidRequestError(f"quality must be in [0, 1], got {quality}")
        _, tokens = as_batch(query)
        if prompt_tokens is not None:
            tokens[0, 0] = float(prompt_tokens)
        X = self.encoder_.encode([query])
        tags = self.tagger_.tag([query], X)
        j = self.all_llms_.index(llm)
        with self._lock():
            q, c, _, toks = self._predict_arrays(X, tags, tokens)
            if quality is not None:
                z = self._bandit_features(self._project(X))[0]
                self.bandit_.update(llm, z, quality - q[0, j], self.cfg.bandit.feedback_weight)
            if cost is not None and cost >= 0 and c[0, j] > 0:
                # the ratio is to the unscaled prediction, so the scale converges to it
                base = c[0, j] / self.cost_scale_[llm]
                self.cost_scale_[llm] = _ewma(self.cost_scale_[llm], cost / base)
            if latency_s is not None and latency_s >= 0:
                pred = self._service_matrix(tokens[:, 0], toks)[0, j]
                if pred > 0:
                    base = pred / self.latency_scale_[llm]
                    self.latency_scale_[llm] = _ewma(self.latency_scale_[llm], latency_s / base)

    def _lock(self) -> threading.Lock:
        if getattr(self, "_update_lock", None) is None:
            self._update_lock = threading.Lock()
        return self._update_lock

    def add_llm(
        self,
        name: str,
        *,
        input_price: float,
        output_price: float,
        tokens_per_s: float | None = None,
        ttft_s: float | None = None,
        concurrency: int | None = None,
        prior_quality: float | None = None,
    ) -> None:
        """Add a candidate at runtime: no history, so the bandit's wide bound explores it."""
        self._check_fitted()
        if name in self.llms_:
            raise InvalidRequestError(f"LLM {name!r} is already a candidate")
        spec = LLMSpec(
            name=name,
            input_price=input_price,
            output_price=output_price,
            tokens_per_s=tokens_per_s or 50.0,
            ttft_s=0.5 if ttft_s is None else ttft_s,
            concurrency=concurrency or self.cfg.latency.default_concurrency,
        )
        with self._lock():
            self.prices_.add(spec)
            if name not in self.all_llms_:
                self.all_llms_.append(name)
                self.bandit_.add(name)
                self.cost_scale_[name] = 1.0
                self.latency_scale_[name] = 1.0
            self.prior_quality_[name] = (
                self.cfg.bandit.new_llm_prior_quality if prior_quality is None else prior_quality
            )
            self.service_[name] = ServiceTime(spec.ttft_s, 0.0, 1.0 / spec.tokens_per_s)
            self.llms_.append(name)

    def remove_llm(self, name: str) -> None:
        """Stop routing to ``name`` at once (its learned state is kept should it come back)."""
        self._check_fitted()
        if name not in self.llms_:
            raise UnknownLLMError(
                f"LLM {name!r} is not a candidate; active: {', '.join(self.llms_)}"
            )
        if len(self.llms_) == 1:
            raise InvalidRequestError("cannot remove the last candidate LLM")
        with self._lock():
            self.llms_.remove(name)

    # -- persistence -------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the whole router (encoder weights, predictors, state, config) to ``path``."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_encoder(self.encoder_, path / "encoder")
        state = {k: v for k, v in self.__dict__.items() if k not in ("encoder_", "_update_lock")}
        state["encoder"] = None
        with open(path / "router.pkl", "wb") as fh:
            pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
        self.cfg.to_yaml(path / "config.yaml")
        self.prices_.save(path / "prices.yaml")
        meta = {
            "format_version": FORMAT_VERSION,
            "llms": self.llms_,
            "reference_llm": self.reference_llm_,
            "lambda": self.lambda_,
        }
        (path / "meta.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | Path, cache_dir: str | Path | None = None) -> MixLLMRouter:
        """Load a router written by ``save``."""
        path = Path(path)
        meta_file = path / "meta.json"
        if not meta_file.exists():
            raise NotFittedError(f"no saved router at {path} (meta.json missing)")
        meta = json.loads(meta_file.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise NotFittedError(
                f"router at {path} has format {meta.get('format_version')}, "
                f"this mixllm reads {FORMAT_VERSION}"
            )
        router = cls.__new__(cls)
        with open(path / "router.pkl", "rb") as fh:
            router.__dict__.update(pickle.load(fh))
        cache = cache_dir or router._cache_dir()
        router.encoder_ = load_encoder(path / "encoder", cache_dir=cache)
        router.tagger_.fit(router.encoder_)
        return router


def _ewma(old: float, new: float, weight: float = 0.1) -> float:
    return (1 - weight) * old + weight * new
