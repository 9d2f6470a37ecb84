"""The tasks of the training flows (``flows.training``): each one a small, timed stage
over ``mixllm/``; I/O stages retry on transient failures only."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import sqlalchemy.exc
import yaml
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from mixllm.core.config import MixLLMConfig
from mixllm.core.errors import DataError
from mixllm.core.prices import load_prices
from mixllm.core.types import RoutingData
from mixllm.data.loaders import load_data
from mixllm.evaluation.evaluate import EvaluationInputs, evaluation_inputs, run_router
from mixllm.evaluation.protocol import Router
from mixllm.evaluation.report import EvaluationReport
from mixllm.registry import evalset, stores
from mixllm.registry.publish import PublishRequest, data_fingerprint, publish
from mixllm.registry.versions import RegisteredVersion
from mixllm.routing.predictor_fit import LLMFit, LLMModels, fit_all, fit_llm
from mixllm.routing.router import MixLLMRouter
from mixllm.routing.training import Training

IO_RETRIES = 2
IO_RETRY_DELAY_S = 2
FEEDBACK_SOURCE = "feedback"


def _transient(exc: BaseException | None) -> bool:
    """A network or disk hiccup worth retrying (a missing file or bad data is not)."""
    while exc is not None:
        permanent = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
        if isinstance(exc, permanent):
            return False
        # OperationalError: a database that is down, restarting or locked (SQLite).
        if isinstance(exc, OSError | httpx.TransportError | sqlalchemy.exc.OperationalError):
            return True
        exc = exc.__cause__
    return False


def _retry_on_io(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry I/O failures only."""
    try:
        state.result()
    except Exception as exc:
        return _transient(exc)
    return False


def feedback_rows(feedback: pd.DataFrame, base: RoutingData) -> pd.DataFrame:
    """Feedback as long-format rows (query, llm, quality, cost, latency_s, source).

    Rows without a quality are dropped; a missing cost is the LLM's mean recorded cost in
    the base data (the service does not always know what a call cost).
    """
    rows = feedback.dropna(subset=["quality"]).copy()
    mean_cost = dict(zip(base.llms, np.nanmean(base.cost, axis=0), strict=True))
    rows["cost"] = rows["cost"].fillna(rows["llm"].map(mean_cost))
    rows["source"] = FEEDBACK_SOURCE
    return rows[["query", "llm", "quality", "cost", "latency_s", "source"]].reset_index(drop=True)


@task(name="check-tracking-store", cache_policy=NO_CACHE)
def check_store_task() -> str:
    """Fail before any work if the MLflow tracking store is unreachable."""
    return stores.check_tracking()


@task(
    name="load-data",
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAY_S,
    retry_condition_fn=_retry_on_io,
    cache_policy=NO_CACHE,
)
def load_task(source: str, prices_path: str | None) -> RoutingData:
    """Read the training data (file, directory or hf:// URL)."""
    data = load_data(source, prices=load_prices(prices_path))
    get_run_logger().info(data.report.summary() if data.report else f"{len(data)} queries")
    return data


@task(name="trusted-set", cache_policy=NO_CACHE)
def trusted_task(model_name: str) -> evalset.TrustedSet | None:
    """The registry's trusted evaluation set, None before its first gated version."""
    return evalset.load_trusted(model_name)


@task(name="validate-data", cache_policy=NO_CACHE)
def validate_task(
    data: RoutingData, config: MixLLMConfig, trusted: evalset.TrustedSet | None
) -> tuple[RoutingData, RoutingData, evalset.TrustedSet]:
    """Check prices and size, then split into train, held-out report rows and trusted set."""
    if len(data) == 0:
        raise DataError("the dataset is empty: no queries to train on")
    load_prices(config.prices_path).validate_llms(data.llms)
    train, test, trusted = evalset.split_for_training(
        data, config.train.test_size, trusted, FEEDBACK_SOURCE
    )
    if len(train) < 10 or len(test) < 3 or len(trusted.data) < 3:
        raise DataError(
            f"too few queries to train and evaluate: {len(data)} in all, {len(train)} for "
            f"training, {len(test)} held out and {len(trusted.data)} trusted "
            "(need >= 10, >= 3 and >= 3)"
        )
    return train, test, trusted


@task(
    name="feedback",
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAY_S,
    retry_condition_fn=_retry_on_io,
    cache_policy=NO_CACHE,
)
def feedback_task(
    feedback_url: str | None, model_name: str, window: int | None
) -> tuple[pd.DataFrame, int | None]:
    """Every stored feedback row (the newest ``window`` if set), and the largest feedback id
    the champion was trained on (None: no champion, or none of its data was feedback)."""
    from mixllm.registry.feedback import FeedbackStore, watermark_id

    trained = watermark_id(stores.feedback_watermark(model_name))
    store = FeedbackStore(feedback_url)
    try:
        return store.feedback_since(last=window), trained
    finally:
        store.close()


@task(name="tag", cache_policy=NO_CACHE)
def tag_task(trainer: Training, train: RoutingData) -> tuple[Training, list[list[str]]]:
    """Tag the training queries with the base encoder.

    The heavy tasks return the trainer they changed: on a Dask worker they change a copy.
    """
    return trainer, trainer.tag(train)


@task(name="embed", cache_policy=NO_CACHE)
def embed_task(
    trainer: Training, train: RoutingData, tags: list[list[str]]
) -> tuple[Training, np.ndarray, list[list[str]]]:
    """Fine-tune the tag-enhanced encoder, then embed and re-tag the training queries."""
    X, tags = trainer.finetune(train, tags)
    return trainer, X, tags


@task(name="fit-predictors", task_run_name="{stage}-{fit.llm}", cache_policy=NO_CACHE)
def fit_llm_task(stage: str, fit: LLMFit) -> LLMModels:
    """One LLM's quality bags and output-length model (``stage`` only names the run: the
    pipeline submits one such task per LLM for the predictors and the refit)."""
    return fit_llm(fit)


@task(name="fit-fold", task_run_name="{stage}", cache_policy=NO_CACHE)
def fit_fold_task(stage: str, fits: list[LLMFit]) -> list[LLMModels]:
    """Every LLM's models of one cross-fitting fold, in turn: one task per fold, not per fold
    and LLM, because the folds are many (``train.calibration_folds``) and each fit is small,
    so per-LLM tasks would cost more in orchestration than in fitting."""
    return fit_all(fits)


@task(name="evaluation-inputs", cache_policy=NO_CACHE)
def evaluation_inputs_task(
    router: MixLLMRouter, train: RoutingData, test: RoutingData
) -> EvaluationInputs:
    """The held-out evaluation's shared inputs: plain and prompt embeddings, tags, costs."""
    return evaluation_inputs(router, train, test, progress=False)


@task(name="evaluate-router", task_run_name="evaluate-{name}", cache_policy=NO_CACHE)
def evaluate_router_task(name: str, router: Router, inputs: EvaluationInputs) -> Any:
    """Fit one evaluated router (baseline, reference or MixLLM) on the training split and
    take its output on the held-out one (None: its input features are absent)."""
    return run_router(
        router, inputs.train, inputs.test, inputs.train_features, inputs.test_features
    )


def publish_evaluation(report: EvaluationReport, n_test: int) -> None:
    """Log the evaluation table and publish it as the Prefect artifact ``mixllm-evaluation``."""
    table = report.to_markdown()
    get_run_logger().info("Evaluation on %d held-out queries:\n%s", n_test, table)
    create_markdown_artifact(
        markdown="# MixLLM evaluation\n\n" + table,
        key="mixllm-evaluation",
        description="Router and baselines on the held-out split",
    )


@task(name="register", cache_policy=NO_CACHE)
def register_task(
    req: PublishRequest, data: RoutingData, timings: dict[str, float]
) -> RegisteredVersion:
    """Log the run to MLflow, gate the new router against the champion and register it."""
    fingerprint = data_fingerprint(data)
    with tempfile.TemporaryDirectory(prefix="mixllm-run-") as tmp:
        files = _run_files(Path(tmp), req.router, fingerprint, req.report, req.config)
        metrics = {f"time_{k}_s": v for k, v in timings.items()}
        return publish(replace(req, files=files, metrics=metrics, fingerprint=fingerprint))


def _run_files(
    folder: Path,
    router: MixLLMRouter,
    fingerprint: dict[str, Any],
    report: Any,
    config: MixLLMConfig,
) -> dict[str, Path]:
    """The run's artifacts written to ``folder``: {artifact dir: local file}."""
    out = {}
    plot = report.plot_pareto(folder / "pareto.png", title="MixLLM vs baselines (held-out)")
    out["evaluation/pareto.png"] = Path(plot)
    (folder / "benchmark.md").write_text(report.to_markdown())
    out["evaluation/benchmark.md"] = folder / "benchmark.md"
    router.prices_.save(folder / "prices.yaml")
    out["config/prices.yaml"] = folder / "prices.yaml"
    taxonomy = getattr(router.tagger_, "taxonomy_", None) or {
        "vocabulary": router.tagger_.vocabulary
    }
    (folder / "taxonomy.yaml").write_text(yaml.safe_dump(taxonomy, sort_keys=False))
    out["config/taxonomy.yaml"] = folder / "taxonomy.yaml"
    config.to_yaml(folder / "config.yaml")
    out["config/config.yaml"] = folder / "config.yaml"
    (folder / "data_fingerprint.yaml").write_text(yaml.safe_dump(fingerprint, sort_keys=False))
    out["data/data_fingerprint.yaml"] = folder / "data_fingerprint.yaml"
    return out
