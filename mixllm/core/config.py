"""The one typed configuration of MixLLM: every tunable setting lives here."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaggerConfig(_Section):
    """How queries get their domain / task / skill tags."""

    kind: Literal["taxonomy", "llm", "mined"] = "taxonomy"
    n_topics: int = Field(12, ge=1)  # mined: k-means topics of the training embeddings
    taxonomy_prior: bool = True  # mined: also tag with the taxonomy, by meaning only
    max_tags_per_facet: int = Field(1, ge=1, le=3)
    min_similarity: float = 0.15
    # Only used by the LLM tagger (InsTag-style prompt to an OpenAI-compatible endpoint).
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key_env: str = "OPENAI_API_KEY"


class EncoderConfig(_Section):
    """Sentence-transformers encoder and its tag-contrastive fine-tuning."""

    kind: Literal["sentence", "hash"] = "sentence"  # hash: model-free, for tiny setups and tests
    model_path: str | None = None  # None: the packaged offline all-MiniLM-L6-v2
    finetune: bool = True
    epochs: int = Field(1, ge=0)
    batch_size: int = Field(32, ge=2)
    learning_rate: float = 3e-5
    # 32 tokens keep the question stem (what routing needs): on the held-out split it routes
    # with the quality of 64 within noise (docs/BENCHMARKS.md "Encoder backends") at ~half
    # the encoder's CPU per query, which bounds a busy service's throughput.
    max_seq_length: int = Field(32, ge=16)
    max_finetune_pairs: int = Field(1024, ge=0)  # bounds fine-tuning time on a CPU
    embed_batch_size: int = Field(64, ge=1)
    cache_dir: str | None = None  # None: $MIXLLM_HOME/cache/embeddings
    # What computes embeddings: the torch model, or its ONNX export (exported once, cached by
    # a hash of the weights) run by ONNX Runtime, fp32 or with dynamic int8 weights.
    # Fine-tuning always runs in torch. See docs/BENCHMARKS.md "Encoder backends": "onnx"
    # routes the held-out split exactly as torch does; "onnx-int8" at 32 tokens routes with
    # torch-at-64's quality within noise (paired interval holds 0, AIQ within 0.001) at a
    # third of fp32-at-64's CPU per query.
    backend: Literal["torch", "onnx", "onnx-int8"] = "onnx-int8"
    threads: int | None = Field(None, ge=1)  # ONNX Runtime intra-op threads; None: its default


class PredictorConfig(_Section):
    """Per-LLM LightGBM quality and output-length predictors."""

    # strong regularization: per-query signal is weak next to the tag prior (see BENCHMARKS)
    n_estimators: int = Field(300, ge=10)  # an upper bound: early stopping picks the count
    learning_rate: float = 0.03
    num_leaves: int = Field(15, ge=2)
    max_depth: int = Field(6, ge=1)  # shallow trees keep single-query prediction sub-ms
    max_bin: int = Field(63, ge=8)
    min_child_samples: int = Field(30, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.5, gt=0, le=1)
    reg_lambda: float = 10.0
    use_tag_features: bool = True  # tag one-hots as features and the tag prior to boost from
    tag_prior_smoothing: float = Field(20.0, ge=0)
    pca_dim: int = Field(16, ge=2)  # embedding components fed to the trees (speed, less noise)
    early_stopping_rounds: int = Field(20, ge=1)  # on the calibration rows
    n_bags: int = Field(3, ge=1)  # bagged models give the epistemic uncertainty
    # 1: these fits are small, so LightGBM's OpenMP threads cost more in synchronisation than
    # they save (same models: column-wise and deterministic); in the Prefect flow's task
    # thread, 2 threads made the warm cross-fitting (20 folds) take 266 s instead of 47 s
    # (`mixllm benchmark-pipeline`, 2026-11-30).
    threads: int = Field(1, ge=1)


class BanditConfig(_Section):
    """LinUCB-style online correction on top of the LightGBM predictions."""

    alpha: float = Field(0.05, ge=0)  # weight of the uncertainty bonus
    ridge: float = Field(1.0, gt=0)
    dim: int = Field(16, ge=1)  # embedding components in the linear model (plus a bias)
    # weight of each training query in the prior: small, so that feedback moves it quickly
    prior_weight: float = Field(0.02, ge=0)
    new_llm_prior_quality: float = Field(0.7, ge=0, le=1)
    feedback_weight: float = Field(1.0, gt=0)


class LatencyConfig(_Section):
    """Queueing-aware latency penalty (the paper's time-constrained setting)."""

    enabled: bool = True
    max_latency_s: float = Field(10.0, gt=0)  # the user's time constraint per query
    penalty: float = Field(1.0, ge=0)  # quality points lost per second over the limit
    default_concurrency: int = Field(8, ge=1)


class DecisionConfig(_Section):
    """Meta decision maker: quality - lambda * cost + alpha * uncertainty - latency penalty."""

    budget_pct: float | None = Field(25.0, gt=0)  # % of the reference LLM's cost per query
    budget_usd: float | None = Field(None, gt=0)  # dollars per query; wins over budget_pct
    reference_llm: str | None = None  # None: the LLM with the highest mean quality
    lambda_grid_size: int = Field(60, ge=5)


class TrainConfig(_Section):
    """Data splits and seeds."""

    seed: int = 0
    test_size: float = Field(0.3, gt=0, lt=1)
    calibration_size: float = Field(0.2, gt=0, lt=1)
    refit_full: bool = True  # after calibrating lambda, retrain the predictors on all rows
    # with refit_full: calibrate lambda on out-of-fold predictions of ALL rows (k folds, at
    # most one per 10 rows); 0 or 1: on the held-out calibration rows only. Out-of-fold
    # predictions come from models fitted on (k-1)/k of the rows, noisier than the refit
    # that serves, and the extra noise widens the tail a small budget buys from: on 4
    # RouterBench splits (`mixllm benchmark --only in-domain`, "Budget fidelity across
    # splits") a 10 % budget under-spent by 10.8 % on average with 5 folds, 5.8 % with 20.
    calibration_folds: int = Field(20, ge=0)


class MixLLMConfig(_Section):
    """Every setting of a MixLLM router, in one place."""

    tagger: TaggerConfig = TaggerConfig()
    encoder: EncoderConfig = EncoderConfig()
    predictor: PredictorConfig = PredictorConfig()
    bandit: BanditConfig = BanditConfig()
    latency: LatencyConfig = LatencyConfig()
    decision: DecisionConfig = DecisionConfig()
    train: TrainConfig = TrainConfig()
    prices_path: str | None = None  # None: the packaged RouterBench price table

    @classmethod
    def from_yaml(cls, path: str | Path) -> MixLLMConfig:
        """Load a config file; unknown keys are an error."""
        with open(path) as fh:
            return cls.model_validate(yaml.safe_load(fh) or {})

    def to_yaml(self, path: str | Path) -> None:
        """Write the config as YAML."""
        Path(path).write_text(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False))

    def updated(self, changes: dict) -> MixLLMConfig:
        """A validated copy with nested ``changes`` applied, e.g. {"bandit": {"alpha": 0}}."""
        return MixLLMConfig.model_validate(_deep_update(self.model_dump(mode="json"), changes))

    def flat(self) -> dict[str, object]:
        """Flattened ``section.key`` view, e.g. for ``mlflow.log_params``."""
        out: dict[str, object] = {}
        for section, values in self.model_dump(mode="json").items():
            if isinstance(values, dict):
                out.update({f"{section}.{k}": v for k, v in values.items()})
            else:
                out[section] = values
        return out


def _deep_update(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _deep_update(out[key], value) if nested else value
    return out
