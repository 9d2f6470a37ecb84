"""Baseline routers that MixLLM is compared against.

Every baseline implements the evaluation's ``Router`` protocol (``fit`` / ``output``).
Learned baselines (``ScoreRouter``) predict a quality matrix ``(n, k)`` from one input of
the shared ``Features`` (embeddings, tags or prompt embeddings) and output it with the
shared cost estimate, to be swept by ``decision.choose`` exactly like any other
score-based router. Non-learned baselines (oracle, random, single LLM:
``reference_routers``) output per-query choices directly. Quality matrices may contain
NaN (unobserved outcome): every learned baseline fits each LLM on the rows where that LLM
was observed.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from mixllm.core.errors import DataError, NotFittedError
from mixllm.core.types import RoutingData
from mixllm.evaluation.protocol import Features, Router, ScoreRouterOutput
from mixllm.evaluation.reference_routers import OracleRouter, RandomRouter, SingleLLMRouter
from mixllm.routing.decision import nanmean
from mixllm.routing.predictors import TagPrior


def _check_quality(quality: np.ndarray, n: int) -> np.ndarray:
    q = np.asarray(quality, dtype=float)
    if q.ndim != 2 or q.shape[0] != n:
        raise DataError(f"quality must be (n_queries={n}, n_llms), got {q.shape}")
    return q


def _mask_groups(quality: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Group LLM columns sharing the same observed rows: ``[(cols, rows), ...]``.

    Dense RouterBench data gives one group, so a multi-output model is fitted once;
    sparse logs fall back to one model per observation pattern.
    """
    ok = ~np.isnan(quality)
    groups: dict[bytes, list[int]] = {}
    for j in range(quality.shape[1]):
        groups.setdefault(np.packbits(ok[:, j]).tobytes(), []).append(j)
    return [(np.array(cols), np.flatnonzero(ok[:, cols[0]])) for cols in groups.values()]


class ScoreRouter(ABC):
    """A router from a quality model: fits ``fit_quality`` on its input of the ``Features``
    and outputs ``predict_quality`` with the shared cost estimate, to sweep over lambda."""

    name = "score"
    inputs = "embeddings"  # the Features field the quality model reads

    def fit(self, train: RoutingData, features: Features) -> ScoreRouter:
        """Fit the quality model on the training split's recorded quality."""
        return self.fit_quality(getattr(features, self.inputs), train.quality)

    def output(self, test: RoutingData, features: Features) -> ScoreRouterOutput:
        """Predicted quality with the test split's cost estimate ``features.cost``."""
        if features.cost is None:
            raise DataError(f"{self.name}: the test features carry no cost estimate")
        q_hat = self.predict_quality(getattr(features, self.inputs))
        return ScoreRouterOutput(q_hat, features.cost)

    @abstractmethod
    def fit_quality(self, X: Any, quality: np.ndarray) -> ScoreRouter:
        """Learn per-LLM quality ``(n, k)`` (NaN: unobserved) from the inputs ``X``."""

    @abstractmethod
    def predict_quality(self, X: Any) -> np.ndarray:
        """Predicted quality ``(n, k)``."""


class _QualityRegressor(ScoreRouter):
    """Shared plumbing: NaN-aware fit per observation pattern, clipped predictions."""

    name = "base"

    def __init__(self) -> None:
        self.n_llms_: int | None = None
        self.fallback_: np.ndarray | None = None

    def _start_fit(self, X: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=float)
        q = _check_quality(quality, len(X))
        self.n_llms_ = q.shape[1]
        # 0.5 for an LLM never observed: no information
        self.fallback_ = nanmean(q, axis=0, empty=0.5)
        return X, q

    def _check_fitted(self) -> None:
        if self.n_llms_ is None:
            raise NotFittedError(f"{type(self).__name__} used before fit")


class KNNRouter(_QualityRegressor):
    """RouterBench KNN: mean quality of the ``n_neighbors`` most cosine-similar train queries.

    Published configuration (withmartian/routerbench ``configs/evaluate_routers.yaml``):
    cosine metric, k in {5, 10, 40}; k = 40 is the default here.
    """

    name = "knn"

    def __init__(self, n_neighbors: int = 40) -> None:
        super().__init__()
        self.n_neighbors = n_neighbors

    def fit_quality(self, X_train: np.ndarray, quality_train: np.ndarray) -> KNNRouter:
        """Store L2-normalised train features and the quality matrix."""
        X, q = self._start_fit(X_train, quality_train)
        self.X_ = _unit_rows(X)
        self.quality_ = q
        return self

    def predict_quality(self, X: np.ndarray) -> np.ndarray:
        """Per-LLM mean quality of the nearest train queries that observed that LLM."""
        self._check_fitted()
        sim = _unit_rows(np.asarray(X, dtype=float)) @ self.X_.T
        out = np.empty((len(sim), self.n_llms_))
        for cols, rows in _mask_groups(self.quality_):
            if len(rows) == 0:
                out[:, cols] = self.fallback_[cols]
                continue
            kk = min(self.n_neighbors, len(rows))
            # argpartition on negated similarity: the kk most similar, order irrelevant.
            nn = np.argpartition(-sim[:, rows], kk - 1, axis=1)[:, :kk]
            out[:, cols] = self.quality_[rows[nn]][:, :, cols].mean(axis=1)
        return out


def _unit_rows(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


class MLPRouter(_QualityRegressor):
    """RouterBench MLP: sklearn ``MLPRegressor`` on per-LLM quality.

    Published configuration (withmartian/routerbench ``routers/mlp_router.py`` and
    ``configs/evaluate_routers.yaml``): hidden layers (100,) (the grid also has (100, 100)),
    relu, Adam at a constant learning rate 1e-3, 200 iterations, sklearn's default L2
    alpha 1e-4, one regressor per LLM. RouterBench embeds the RAW prompt (few-shot prefix
    included); ``evaluate`` reports it on the query text (``mlp``) and on the raw prompt
    (``mlp_prompt``).
    """

    name = "mlp"

    def __init__(
        self,
        hidden: tuple[int, ...] = (100,),
        max_iter: int = 200,
        alpha: float = 1e-4,
        seed: int = 0,
        inputs: str = "embeddings",
    ) -> None:
        super().__init__()
        self.hidden, self.max_iter, self.alpha, self.seed = hidden, max_iter, alpha, seed
        self.inputs = inputs  # "prompt_embeddings": RouterBench's MLP on the raw prompt

    def fit_quality(self, X_train: np.ndarray, quality_train: np.ndarray) -> MLPRouter:
        """One multi-output MLP per observation pattern (one in total on dense data)."""
        X, q = self._start_fit(X_train, quality_train)
        # RouterBench feeds the embeddings as they are: no standardisation
        self.scaler_ = StandardScaler(with_mean=False, with_std=False).fit(X)
        Xs = self.scaler_.transform(X)
        self.models_: list[tuple[np.ndarray, MLPRegressor | None]] = []
        # one regressor per LLM, as RouterBench fits them
        for j in range(q.shape[1]):
            cols, rows = np.array([j]), np.flatnonzero(~np.isnan(q[:, j]))
            if len(rows) < 2:
                self.models_.append((cols, None))
                continue
            mlp = MLPRegressor(
                hidden_layer_sizes=self.hidden,
                alpha=self.alpha,
                max_iter=self.max_iter,
                learning_rate_init=1e-3,
                batch_size=min(200, len(rows)),  # sklearn "auto", as RouterBench
                random_state=self.seed,
            )
            _quiet_fit(mlp, Xs[rows], q[np.ix_(rows, cols)])
            self.models_.append((cols, mlp))
        return self

    def predict_quality(self, X: np.ndarray) -> np.ndarray:
        """Predicted quality clipped to [0, 1]."""
        self._check_fitted()
        Xs = self.scaler_.transform(np.asarray(X, dtype=float))
        out = np.empty((len(Xs), self.n_llms_))
        for cols, mlp in self.models_:
            if mlp is None:
                out[:, cols] = self.fallback_[cols]
            else:
                out[:, cols] = mlp.predict(Xs).reshape(len(Xs), len(cols))
        return np.clip(out, 0.0, 1.0)


def _quiet_fit(model: Any, X: np.ndarray, y: np.ndarray) -> None:
    """Fit, silencing the expected ConvergenceWarning of a deliberately short training."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y)


class SVMRouter(_QualityRegressor):
    """One RBF ``SVR`` per LLM regressing quality on the features (observed rows only)."""

    name = "svm"

    def __init__(self, C: float = 1.0, epsilon: float = 0.1, gamma: str | float = "scale"):
        super().__init__()
        self.C, self.epsilon, self.gamma = C, epsilon, gamma

    def fit_quality(self, X_train: np.ndarray, quality_train: np.ndarray) -> SVMRouter:
        """Fit one SVR per LLM; an LLM with a constant observed quality keeps that constant."""
        X, q = self._start_fit(X_train, quality_train)
        self.scaler_ = StandardScaler().fit(X)
        Xs = self.scaler_.transform(X)
        self.models_: list[SVR | None] = []
        for j in range(q.shape[1]):
            rows = np.flatnonzero(~np.isnan(q[:, j]))
            y = q[rows, j]
            if len(rows) < 2 or np.ptp(y) == 0:
                self.models_.append(None)
                if len(rows):
                    self.fallback_[j] = y[0]
                continue
            svr = SVR(C=self.C, epsilon=self.epsilon, gamma=self.gamma)
            self.models_.append(svr.fit(Xs[rows], y))
        return self

    def predict_quality(self, X: np.ndarray) -> np.ndarray:
        """Predicted quality clipped to [0, 1]."""
        self._check_fitted()
        Xs = self.scaler_.transform(np.asarray(X, dtype=float))
        cols = [
            np.full(len(Xs), self.fallback_[j]) if m is None else m.predict(Xs)
            for j, m in enumerate(self.models_)
        ]
        return np.clip(np.column_stack(cols), 0.0, 1.0)


class MFRouter(_QualityRegressor):
    """RouteLLM matrix factorisation generalised to N LLMs, in torch (CPU).

    ``logit(q, j) = <P x_q, e_j> + b_j`` with a learned projection ``P`` of the standardised
    query features, one embedding ``e_j`` and bias ``b_j`` per LLM; trained full-batch
    with Adam on binary cross-entropy over the observed (query, LLM, quality) triples
    (fractional qualities act as soft labels). Deterministic given ``seed``.
    """

    name = "mf"

    def __init__(
        self,
        dim: int = 32,
        epochs: int = 200,
        lr: float = 1e-2,
        weight_decay: float = 1e-4,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.dim, self.epochs, self.lr = dim, epochs, lr
        self.weight_decay, self.seed = weight_decay, seed

    def fit_quality(self, X_train: np.ndarray, quality_train: np.ndarray) -> MFRouter:
        """Train projection, LLM embeddings and biases on the observed triples."""
        import torch

        X, q = self._start_fit(X_train, quality_train)
        self.mu_, self.sd_ = X.mean(axis=0), X.std(axis=0) + 1e-8
        gen = torch.Generator().manual_seed(self.seed)
        d, k = X.shape[1], q.shape[1]
        # Small init keeps the first logits near 0 (p = 0.5) so BCE starts well-behaved.
        proj = torch.randn(d, self.dim, generator=gen, dtype=torch.float64) / np.sqrt(d)
        emb = torch.randn(k, self.dim, generator=gen, dtype=torch.float64) * 0.1
        bias = torch.logit(torch.as_tensor(np.clip(self.fallback_, 0.02, 0.98)))
        params = [t.clone().requires_grad_(True) for t in (proj, emb, bias)]
        xs = torch.as_tensor((X - self.mu_) / self.sd_)
        obs = torch.as_tensor(~np.isnan(q))
        target = torch.as_tensor(np.nan_to_num(q, nan=0.0))
        opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
        n_obs = obs.sum().clamp(min=1)
        for _ in range(self.epochs):
            opt.zero_grad()
            logits = (xs @ params[0]) @ params[1].T + params[2]
            loss = (loss_fn(logits, target) * obs).sum() / n_obs
            loss.backward()
            opt.step()
        self.params_ = [p.detach().numpy().copy() for p in params]
        return self

    def predict_quality(self, X: np.ndarray) -> np.ndarray:
        """Sigmoid of the bilinear score: predicted probability of a good answer."""
        self._check_fitted()
        proj, emb, bias = self.params_
        xs = (np.asarray(X, dtype=float) - self.mu_) / self.sd_
        logits = (xs @ proj) @ emb.T + bias
        return 1.0 / (1.0 + np.exp(-logits))


class TagMeanRouter(ScoreRouter):
    """Mean quality per (tag, LLM), MixLLM's own tag prior used as a router on its own.

    ``smoothing`` pseudo-counts shrink each tag mean toward the LLM's global mean (0: plain
    means, the default); see ``TagPrior`` for unseen tags and unobserved LLMs.
    """

    name = "tag_mean"
    inputs = "tags"

    def __init__(self, smoothing: float = 0.0) -> None:
        self.smoothing = smoothing
        self.prior_: TagPrior | None = None

    def fit_quality(
        self, tags_train: Sequence[Sequence[str]], quality_train: np.ndarray
    ) -> TagMeanRouter:
        """Per-tag, per-LLM mean of the observed qualities."""
        q = _check_quality(quality_train, len(tags_train))
        self.prior_ = TagPrior(self.smoothing).fit(
            tags_train, q, [str(j) for j in range(q.shape[1])]
        )
        return self

    def predict_quality(self, tags: Sequence[Sequence[str]]) -> np.ndarray:
        """Average of the query's tag means; no tag at all gives the global LLM means."""
        if self.prior_ is None:
            raise NotFittedError("TagMeanRouter used before fit")
        return self.prior_.predict(tags)


class LinearCostModel:
    """Per-LLM least-squares line ``cost ~ a + b * prompt_tokens`` (the baselines' c_hat)."""

    def fit(self, prompt_tokens: np.ndarray, cost_train: np.ndarray) -> LinearCostModel:
        """Fit one line per LLM on its observed costs; a flat mean when tokens do not vary."""
        t = np.asarray(prompt_tokens, dtype=float)
        c = np.asarray(cost_train, dtype=float)
        if c.ndim != 2 or c.shape[0] != len(t):
            raise DataError(f"cost must be (n_queries={len(t)}, n_llms), got {c.shape}")
        self.coef_ = np.zeros((c.shape[1], 2))  # (intercept, slope) per LLM
        for j in range(c.shape[1]):
            ok = np.isfinite(c[:, j]) & np.isfinite(t)
            if not ok.any():
                continue
            if np.ptp(t[ok]) == 0:
                self.coef_[j] = (c[ok, j].mean(), 0.0)
                continue
            A = np.column_stack([np.ones(ok.sum()), t[ok]])
            self.coef_[j] = np.linalg.lstsq(A, c[ok, j], rcond=None)[0]
        # Never predict below the cheapest cost actually seen: a negative or zero price
        # would make a sweep pick that LLM for free.
        self.floor_ = np.array(
            [np.nanmin(c[:, j]) if np.isfinite(c[:, j]).any() else 0.0 for j in range(c.shape[1])]
        )
        return self

    def predict(self, prompt_tokens: np.ndarray) -> np.ndarray:
        """Predicted cost ``(n, k)`` in dollars."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("LinearCostModel used before fit")
        t = np.asarray(prompt_tokens, dtype=float)[:, None]
        return np.maximum(self.coef_[:, 0] + self.coef_[:, 1] * t, self.floor_)


LEARNED = ("knn", "mlp", "svm", "mf", "tag_mean", "sw_ranking", "optllm")


def make_baselines(seed: int = 0, llms: Sequence[str] = ()) -> dict[str, Router]:
    """Fresh baselines by name: ``knn, mlp, svm, mf, tag_mean, sw_ranking, optllm, oracle,
    random`` + one per LLM (peers: ``mixllm.evaluation.peers``)."""
    from mixllm.evaluation.peers import OptLLMRouter, SWRankingRouter

    out: dict[str, Router] = {
        "knn": KNNRouter(),
        "mlp": MLPRouter(seed=seed),
        "svm": SVMRouter(),
        "mf": MFRouter(seed=seed),
        "tag_mean": TagMeanRouter(),
        "sw_ranking": SWRankingRouter(),
        "optllm": OptLLMRouter(seed=seed),
        "oracle": OracleRouter(),
        "random": RandomRouter(seed=seed),
    }
    for llm in llms:
        if llm in out:
            raise ValueError(f"LLM name {llm!r} clashes with a baseline name")
        out[llm] = SingleLLMRouter(llm)
    return out
