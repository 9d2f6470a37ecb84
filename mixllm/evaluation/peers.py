"""Peer routers at their published configurations, generalised to N LLMs.

- ``SWRankingRouter``: RouteLLM's similarity-weighted (SW) ranking router (Ong et al.,
  2024, lm-sys/RouteLLM ``SWRankingRouter``). Every training query is a set of pairwise
  "battles" between LLMs (higher recorded quality wins, equal quality is a tie, counted
  half a win each as in RouteLLM's ``compute_elo_mle_with_tie``); for a new query each
  training query is weighted ``10 * 10 ** (sim / max_sim)`` (RouteLLM's
  ``get_weightings``, cosine similarity of the embeddings) and a weighted Bradley-Terry
  model is fitted. RouteLLM scores 2 LLMs by GPT-4's win rate; with N LLMs each LLM's
  score is its mean win probability against the others. RouteLLM's Elo tiers group the
  ~60 Arena models; with a handful of LLMs every LLM is its own tier, so tiers are omitted.
  The BT maximum likelihood is solved by Hunter's (2004) MM iterations (same optimum as
  RouteLLM's unpenalised logistic regression) with a 0.01 pseudo-battle per pair so an
  LLM that never wins near a query keeps a finite strength.
- ``OptLLMRouter``: OptLLM (Liu et al., ICWS 2024; the MixLLM paper's strongest baseline):
  a multi-label classifier of "LLM j answers query q well" with robustness from bootstrap
  bagging (the mean of ``n_bags`` logistic regressions fitted on resamples), then a search
  for Pareto-optimal assignments. The search here is the shared lambda sweep: for a
  linear cost and quality objective it finds exactly the convex-hull assignments, the
  only ones AIQ counts (OptLLM's destruction/reconstruction heuristic also reaches
  non-hull points, which cannot raise AIQ).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from mixllm.core.errors import NotFittedError
from mixllm.evaluation.baselines import _QualityRegressor, _quiet_fit, _unit_rows

_PSEUDO_BATTLE = 0.01  # per pair and direction: keeps BT strengths finite
_MM_ITERS = 200
_BLOCK = 64  # test queries per block: bounds the (block, n_train) weight matrix


def battle_wins(quality: np.ndarray) -> np.ndarray:
    """(n, k, k) wins of row LLM over column LLM per query: 1 win, 0.5 tie, 0 loss/unseen."""
    q = np.asarray(quality, dtype=float)
    a, b = q[:, :, None], q[:, None, :]
    seen = np.isfinite(a) & np.isfinite(b)
    wins = np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))
    wins = np.where(seen, wins, 0.0)
    k = q.shape[1]
    wins[:, np.arange(k), np.arange(k)] = 0.0
    return wins


def bradley_terry(wins: np.ndarray, iters: int = _MM_ITERS) -> np.ndarray:
    """Strengths ``(m, k)`` (summing to k) from weighted win matrices ``(m, k, k)``."""
    w = wins + _PSEUDO_BATTLE
    k = w.shape[1]
    w[:, np.arange(k), np.arange(k)] = 0.0
    games = w + np.swapaxes(w, 1, 2)
    total_wins = w.sum(axis=2)
    p = np.ones(w.shape[:2])
    for _ in range(iters):
        denom = (games / (p[:, :, None] + p[:, None, :])).sum(axis=2)
        p = total_wins / denom
        p = p * k / p.sum(axis=1, keepdims=True)
    return p


def mean_win_probability(p: np.ndarray) -> np.ndarray:
    """``(m, k)`` mean over the other LLMs of P(j beats them) under strengths ``p``."""
    k = p.shape[1]
    prob = p[:, :, None] / (p[:, :, None] + p[:, None, :])
    return (prob.sum(axis=2) - 0.5) / max(k - 1, 1)


class SWRankingRouter(_QualityRegressor):
    """RouteLLM similarity-weighted ranking (see the module docstring), N LLMs."""

    name = "sw_ranking"

    def fit_quality(self, X_train: np.ndarray, quality_train: np.ndarray) -> SWRankingRouter:
        """Keep unit-norm train embeddings and the per-query battle outcomes."""
        X, q = self._start_fit(X_train, quality_train)
        self.X_ = _unit_rows(X)
        self.wins_ = battle_wins(q).reshape(len(q), -1)
        return self

    def predict_quality(self, X: np.ndarray) -> np.ndarray:
        """Mean win probability (n, k) of each LLM under the query's weighted BT model."""
        self._check_fitted()
        Xq = _unit_rows(np.asarray(X, dtype=float))
        k = self.n_llms_
        out = np.empty((len(Xq), k))
        for start in range(0, len(Xq), _BLOCK):
            sim = Xq[start : start + _BLOCK] @ self.X_.T
            max_sim = np.maximum(sim.max(axis=1, keepdims=True), 1e-9)
            weights = 10.0 * 10.0 ** (sim / max_sim)
            wins = (weights @ self.wins_).reshape(-1, k, k)
            out[start : start + _BLOCK] = mean_win_probability(bradley_terry(wins))
        return out


class OptLLMRouter(_QualityRegressor):
    """OptLLM's robust multi-label prediction (bagged logistic regressions), see above."""

    name = "optllm"

    def __init__(self, n_bags: int = 5, C: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        self.n_bags, self.C, self.seed = n_bags, C, seed

    def fit_quality(self, X_train: np.ndarray, quality_train: np.ndarray) -> OptLLMRouter:
        """Per LLM, ``n_bags`` logistic regressions on bootstrap resamples of its rows."""
        X, q = self._start_fit(X_train, quality_train)
        self.scaler_ = StandardScaler().fit(X)
        Xs = self.scaler_.transform(X)
        rng = np.random.default_rng(self.seed)
        self.models_: list[list[LogisticRegression]] = []
        for j in range(q.shape[1]):
            rows = np.flatnonzero(~np.isnan(q[:, j]))
            y = (q[rows, j] >= 0.5).astype(int)  # "answers well"; RouterBench 0/1 as is
            bags = []
            for _ in range(self.n_bags if len(np.unique(y)) > 1 else 0):
                pick = rows[rng.integers(0, len(rows), len(rows))]
                yb = (q[pick, j] >= 0.5).astype(int)
                if len(np.unique(yb)) < 2:
                    continue
                # Newton steps reach the regularised optimum in ~5-10 iterations; lbfgs
                # stopped at 300 unconverged on these 384-dim embeddings, 4x slower
                lr = LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=100)
                _quiet_fit(lr, Xs[pick], yb)
                bags.append(lr)
            if not bags and len(rows):
                self.fallback_[j] = float(y.mean())
            self.models_.append(bags)
        return self

    def predict_quality(self, X: np.ndarray) -> np.ndarray:
        """Bagged probability (n, k) that each LLM answers well."""
        if not hasattr(self, "models_"):
            raise NotFittedError("OptLLMRouter used before fit")
        Xs = self.scaler_.transform(np.asarray(X, dtype=float))
        cols = [
            np.mean([m.predict_proba(Xs)[:, 1] for m in bags], axis=0)
            if bags
            else np.full(len(Xs), self.fallback_[j])
            for j, bags in enumerate(self.models_)
        ]
        return np.column_stack(cols)
