"""Per-LLM LightGBM predictors of response quality and output length, with uncertainty."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

from mixllm.core.config import PredictorConfig
from mixllm.routing.predictor_fit import LLMModels, fit_all, llm_fits, logit
from mixllm.routing.trees import TreeEnsembles

# Below this many rows the numpy tree walk beats LightGBM's per-call overhead.
_SMALL_BATCH = 16


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class TagPrior:
    """Smoothed mean quality of each LLM per tag: MixLLM's prior and the tag-mean baseline.

    A query's prior is the mean over its distinct tags; a tag never seen in training (or
    never with that LLM observed) stands for the LLM's global mean; ``smoothing`` > 0
    shrinks each tag mean toward the global mean with that many pseudo-counts. An LLM never
    observed at all has global mean 0.5 (no information).
    """

    def __init__(self, smoothing: float = 20.0):
        self.smoothing = smoothing

    def fit(
        self, tags: Sequence[Sequence[str]], quality: np.ndarray, llms: Sequence[str]
    ) -> TagPrior:
        """Per-tag, per-LLM smoothed means of the observed outcomes ``quality`` (n, k)."""
        self.llms_ = list(llms)
        seen = ~np.isnan(quality)
        q0 = np.where(seen, quality, 0.0)
        n_seen = seen.sum(axis=0)
        self.global_ = np.where(n_seen > 0, q0.sum(axis=0) / np.maximum(n_seen, 1), 0.5)
        sums: dict[str, np.ndarray] = {}
        counts: dict[str, np.ndarray] = {}
        for row, row_tags in enumerate(tags):
            for t in dict.fromkeys(row_tags):
                sums[t] = sums.get(t, 0.0) + q0[row]
                counts[t] = counts.get(t, 0) + seen[row]
        m = self.smoothing
        self.table_ = {
            t: np.where(
                counts[t] > 0,
                (sums[t] + m * self.global_) / np.maximum(counts[t] + m, 1e-12),
                self.global_,
            )
            for t in sums
        }
        return self

    def to_dict(self) -> dict:
        """JSON-ready form (the save format)."""
        return {
            "smoothing": self.smoothing,
            "llms": self.llms_,
            "global": self.global_.tolist(),
            "table": {t: v.tolist() for t, v in self.table_.items()},
        }

    @classmethod
    def from_dict(cls, raw: dict) -> TagPrior:
        """Inverse of ``to_dict``."""
        out = cls(float(raw["smoothing"]))
        out.llms_ = list(raw["llms"])
        out.global_ = np.asarray(raw["global"], dtype=float)
        out.table_ = {t: np.asarray(v, dtype=float) for t, v in raw["table"].items()}
        return out

    def predict(self, tags: Sequence[Sequence[str]]) -> np.ndarray:
        """(n, k) prior quality of each LLM for each query."""
        out = np.empty((len(tags), len(self.llms_)))
        for i, row_tags in enumerate(tags):
            rows = [self.table_.get(t, self.global_) for t in dict.fromkeys(row_tags)]
            out[i] = np.mean(rows, axis=0) if rows else self.global_
        return out


@dataclass
class QualityCostEstimate:
    """Predictions for n queries x k LLMs."""

    quality: np.ndarray  # mean over bags, in [0, 1]
    quality_std: np.ndarray  # spread over bags: epistemic uncertainty of the predictor
    output_tokens: np.ndarray


class LGBMPredictors:
    """For each LLM: ``n_bags`` bagged LightGBM quality models and one output-length model.

    Quality uses the cross-entropy objective (labels in [0, 1], 0/1 or graded); output length
    is a Poisson regression on the token count. LLMs without enough observations get no
    model and are left to the bandit prior.
    """

    def __init__(self, config: PredictorConfig | None = None, seed: int = 0):
        self.config = config or PredictorConfig()
        self.seed = seed

    def fit(
        self,
        X: np.ndarray,
        quality: np.ndarray,
        output_tokens: np.ndarray | None,
        llms: list[str],
        progress: bool = False,
        prior: np.ndarray | None = None,
        valid: np.ndarray | None = None,
        rounds: dict[str, int] | None = None,
    ) -> LGBMPredictors:
        """Train every LLM's models on its observed rows, boosting from ``prior`` (n, k).

        ``valid`` (bool mask) holds rows out for early stopping: the number of boosting
        rounds is chosen there and kept in ``rounds_``; ``rounds`` reuses such counts.
        One ``predictor_fit.fit_llm`` per LLM, in a loop (a pipeline may run them on
        separate workers and ``assemble`` the results: the same models).
        """
        fits = llm_fits(
            self.config, self.seed, X, quality, output_tokens, llms, prior, valid, rounds
        )
        return self.assemble(llms, fit_all(fits, progress))

    def assemble(self, llms: Sequence[str], parts: Sequence[LLMModels]) -> LGBMPredictors:
        """These predictors from each LLM's fitted models (``parts``, in ``llms`` order)."""
        if [p.llm for p in parts] != list(llms):
            raise ValueError("one fitted part per LLM, in the order of llms")
        self.llms_ = list(llms)
        self.rounds_: dict[str, int] = {}
        self.quality_models_: dict[str, list[lgb.Booster]] = {}
        self.length_models_: dict[str, lgb.Booster] = {}
        self.mean_tokens_: dict[str, float] = {}
        for part in parts:
            self.rounds_.update(part.rounds)
            if part.quality:
                self.quality_models_[part.llm] = list(part.quality)
            if part.length is not None:
                self.length_models_[part.llm] = part.length
                self.mean_tokens_[part.llm] = float(part.mean_tokens)
        self._compile()
        return self

    def _compile(self) -> None:
        self._order: list[tuple[str, str]] = []
        boosters = []
        for llm in self.llms_:
            for b in self.quality_models_.get(llm, []):
                self._order.append(("q", llm))
                boosters.append(b)
            if llm in self.length_models_:
                self._order.append(("len", llm))
                boosters.append(self.length_models_[llm])
        self._boosters = boosters
        self._fast = TreeEnsembles(boosters) if boosters else None
        # index arrays so predict() is a few vectorized ops whatever the number of LLMs
        col = {llm: j for j, llm in enumerate(self.llms_)}
        kinds = [kind for kind, _ in self._order]
        owners = np.array([col[llm] for _, llm in self._order], dtype=np.intp)
        self._q_cols = np.flatnonzero(np.array(kinds) == "q")
        self._len_cols = np.flatnonzero(np.array(kinds) == "len")
        self._q_llm = owners[self._q_cols]
        self._len_llm = owners[self._len_cols]
        n_bags = np.bincount(self._q_llm, minlength=len(self.llms_)).astype(float)
        self._q_avg = np.zeros((len(self._q_llm), len(self.llms_)))
        self._q_avg[np.arange(len(self._q_llm)), self._q_llm] = 1.0 / n_bags[self._q_llm]
        self._q_avg[:, n_bags == 0] = np.nan  # LLMs without a model: NaN, filled by priors
        self._default_tokens = np.array(
            [self.mean_tokens_.get(llm, np.nan) for llm in self.llms_], dtype=float
        )

    def _raw(self, X: np.ndarray) -> np.ndarray:
        if not self._boosters:
            return np.zeros((X.shape[0], 0))
        if X.shape[0] <= _SMALL_BATCH:
            return self._fast.predict_raw(X)
        return np.column_stack([b.predict(X, raw_score=True) for b in self._boosters])

    def predict(self, X: np.ndarray, prior: np.ndarray | None = None) -> QualityCostEstimate:
        """Quality mean/std and output tokens for each row and each LLM (NaN: no model)."""
        n, k = X.shape[0], len(self.llms_)
        raw = self._raw(X)
        logits = raw[:, self._q_cols]
        if prior is not None:
            logits = logits + logit(prior)[:, self._q_llm]
        probs = _sigmoid(logits)
        # (n, models) @ (models, k) averaging matrix: per-LLM means in one product
        mean = probs @ self._q_avg
        std = np.sqrt(np.maximum((probs * probs) @ self._q_avg - mean**2, 0.0))
        toks = np.empty((n, k))
        toks[:] = self._default_tokens
        toks[:, self._len_llm] = np.exp(raw[:, self._len_cols])
        return QualityCostEstimate(mean, std, np.maximum(toks, 1.0))

    def save(self, path: str | Path) -> None:
        """Write the boosters as LightGBM text models plus an ``index.json``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        index: dict = {
            "llms": self.llms_,
            "seed": self.seed,
            "rounds": self.rounds_,
            "mean_tokens": self.mean_tokens_,
            "quality": {},
            "length": {},
        }
        for j, llm in enumerate(self.llms_):
            files = []
            for b, booster in enumerate(self.quality_models_.get(llm, [])):
                files.append(f"quality_{j}_{b}.txt")
                booster.save_model(str(path / files[-1]))
            index["quality"][llm] = files
            if llm in self.length_models_:
                index["length"][llm] = f"length_{j}.txt"
                self.length_models_[llm].save_model(str(path / index["length"][llm]))
        (path / "index.json").write_text(json.dumps(index, indent=1))

    @classmethod
    def load(cls, path: str | Path, config: PredictorConfig) -> LGBMPredictors:
        """Inverse of ``save``."""
        path = Path(path)
        index = json.loads((path / "index.json").read_text())
        out = cls(config, int(index["seed"]))
        out.llms_ = list(index["llms"])
        out.rounds_ = {k: int(v) for k, v in index["rounds"].items()}
        out.mean_tokens_ = {k: float(v) for k, v in index["mean_tokens"].items()}
        out.quality_models_ = {
            llm: [lgb.Booster(model_file=str(path / f)) for f in files]
            for llm, files in index["quality"].items()
            if files
        }
        out.length_models_ = {
            llm: lgb.Booster(model_file=str(path / f)) for llm, f in index["length"].items()
        }
        out._compile()
        return out
