"""Prefect flows of the training pipeline: `train_flow` (one tracked, gated training run) and
`retrain_flow` (the same on base data + every feedback row stored, once new feedback arrived).

The flows only sequence library calls: each stage is a small task over `mixllm/`, timed,
and nothing touches the model registry before the final `register` task, which registers
and aliases all-or-nothing. Embeddings and the tag-enhanced encoder are cached across runs
by the library (content-addressed, under the encoder's cache directory).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pandas as pd
import sqlalchemy.exc
import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from mixllm.core.config import MixLLMConfig
from mixllm.core.errors import ConfigError, DataError
from mixllm.core.paths import default_data_path
from mixllm.core.prices import load_prices
from mixllm.core.types import RoutingData
from mixllm.data import splits as workflow
from mixllm.data.loaders import load_data, long_from_frame
from mixllm.registry import evalset, gate, stores
from mixllm.registry.publish import PublishRequest, data_fingerprint, publish
from mixllm.registry.versions import RegisteredVersion
from mixllm.routing.router import MixLLMRouter
from mixllm.tools.benchmark import ABLATIONS as BENCHMARK_ABLATIONS

T = TypeVar("T")

IO_RETRIES = 2
IO_RETRY_DELAY_S = 2
# The negative control: quality labels permuted across training queries, so the predictors
# learn nothing about the query; the gate must never promote such a model.
SHUFFLED_LABELS = "shuffled-labels"
# The benchmark's ablations under their short names (no-tags, no-finetune, no-uncertainty).
ABLATIONS: dict[str, dict[str, dict[str, Any]]] = {
    **{name.removeprefix("mixllm-"): update for name, update in BENCHMARK_ABLATIONS.items()},
    SHUFFLED_LABELS: {},
}
FEEDBACK_SOURCE = "feedback"


@dataclass
class TrainResult:
    """What a training flow run produced: the registered version and how it was judged."""

    model_name: str
    version: str
    alias: str
    reason: str
    run_id: str
    model_uri: str
    tracking_uri: str
    evaluation_markdown: str
    timings: dict[str, float] = field(default_factory=dict)
    feedback_rows: int = 0


# -- helpers -----------------------------------------------------------------------------


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


def _timed(timings: dict[str, float], stage: str, fn: Callable[..., T], *args: Any) -> T:
    """Run one stage and record its wall time, also when it fails."""
    t0 = time.perf_counter()
    try:
        return fn(*args)
    finally:
        timings[stage] = round(time.perf_counter() - t0, 3)


def build_config(
    config_path: str | None, budget_pct: float | None, seed: int | None, ablations: list[str]
) -> MixLLMConfig:
    """The run's config: file (or defaults) + flow parameters + ablations; errors name the key."""
    unknown = [a for a in ablations if a not in ABLATIONS]
    if unknown:
        raise ConfigError(f"unknown ablation(s) {unknown}; known: {', '.join(ABLATIONS)}")
    try:
        base = MixLLMConfig.from_yaml(config_path) if config_path else MixLLMConfig()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"config {config_path}: {exc}") from exc
    changes: list[dict] = [ABLATIONS[name] for name in ablations]
    if budget_pct is not None:
        changes.append({"decision": {"budget_pct": budget_pct, "budget_usd": None}})
    if seed is not None:
        changes.append({"train": {"seed": seed}})
    try:
        for change in changes:
            base = base.updated(change)
        return base
    except ValueError as exc:
        raise ConfigError(f"invalid config: {exc}") from exc


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


# -- tasks -------------------------------------------------------------------------------


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
def tag_task(router: MixLLMRouter, train: RoutingData) -> list[list[str]]:
    """Tag the training queries with the base encoder."""
    return router.fit_tagger(train)


@task(name="embed", cache_policy=NO_CACHE)
def embed_task(
    router: MixLLMRouter, train: RoutingData, tags: list[list[str]]
) -> tuple[np.ndarray, list[list[str]]]:
    """Fine-tune the tag-enhanced encoder, then embed and re-tag the training queries."""
    return router.fit_encoder(train, tags)


@task(name="train-predictors", cache_policy=NO_CACHE)
def predictors_task(
    router: MixLLMRouter, train: RoutingData, X: np.ndarray, tags: list[list[str]]
) -> MixLLMRouter:
    """Train the per-LLM quality and output-length predictors."""
    return router.fit_predictors(train, X, tags)


@task(name="calibrate", cache_policy=NO_CACHE)
def calibrate_task(
    router: MixLLMRouter, train: RoutingData, X: np.ndarray, tags: list[list[str]]
) -> MixLLMRouter:
    """Learn lambda as a function of the budget on the calibration rows."""
    return router.calibrate(train, X, tags)


@task(name="refit", cache_policy=NO_CACHE)
def refit_task(
    router: MixLLMRouter, train: RoutingData, X: np.ndarray, tags: list[list[str]]
) -> MixLLMRouter:
    """Retrain the predictors on every training row, keeping the calibrated lambda."""
    return router.refit(train, X, tags)


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_task(router: MixLLMRouter, train: RoutingData, test: RoutingData) -> Any:
    """Score the router and every baseline on the held-out split; publish the table."""
    from mixllm.evaluation.report import evaluate_router

    report = evaluate_router(router, train, test, seed=router.cfg.train.seed, progress=False)
    table = report.to_markdown()
    get_run_logger().info("Evaluation on %d held-out queries:\n%s", len(test), table)
    create_markdown_artifact(
        markdown="# MixLLM evaluation\n\n" + table,
        key="mixllm-evaluation",
        description="Router and baselines on the held-out split",
    )
    return report


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


# -- the pipeline --------------------------------------------------------------------------


@dataclass
class _Inputs:
    """The data of one run: the file, merged with feedback on the retraining path."""

    source: str
    dataset: RoutingData
    watermark: str | None = None  # the largest feedback id merged
    n_feedback: int = 0
    fresh: pd.DataFrame | None = None  # feedback since the champion's training, reported on


def _inputs(
    timings: dict[str, float],
    data: str | None,
    config: MixLLMConfig,
    model_name: str,
    feedback: tuple[str | None, int | None] | None,
) -> _Inputs | None:
    """Load the data file and (``feedback``: url, window) every stored feedback row; None
    when feedback was asked for and none arrived since the champion was trained."""
    source = str(data or default_data_path())
    dataset = _timed(timings, "load", load_task, source, config.prices_path)
    if feedback is None:
        return _Inputs(source, dataset)
    url, window = feedback
    stored, trained = _timed(timings, "feedback", feedback_task, url, model_name, window)
    fresh = stored if trained is None else stored[stored["feedback_id"] > trained]
    logger = get_run_logger()
    if fresh.empty:
        logger.info("No feedback after id %s: nothing to retrain.", trained)
        return None
    rows = feedback_rows(stored, dataset)
    merged = dataset.concat(long_from_frame(rows, source=FEEDBACK_SOURCE))
    logger.info("Merged all %d feedback rows (%d after id %s).", len(rows), len(fresh), trained)
    # Every row is read every time; the largest id only tells the next run what is new.
    watermark = str(int(stored["feedback_id"].max()))
    return _Inputs(source, merged, watermark, len(rows), fresh)


def _fit(timings: dict[str, float], config: MixLLMConfig, train: RoutingData) -> MixLLMRouter:
    """The training stages, in the same order as ``MixLLMRouter.fit``."""
    router = MixLLMRouter(config)
    tags0 = _timed(timings, "tag", tag_task, router, train)
    X, tags = _timed(timings, "embed", embed_task, router, train, tags0)
    _timed(timings, "train_predictors", predictors_task, router, train, X, tags)
    _timed(timings, "calibrate", calibrate_task, router, train, X, tags)
    if config.train.refit_full:
        _timed(timings, "refit", refit_task, router, train, X, tags)
    return router


def _pipeline(
    *,
    data: str | None,
    budget_pct: float | None,
    seed: int | None,
    ablations: list[str],
    config_path: str | None,
    model_name: str,
    experiment: str,
    aiq_tolerance: float,
    quality_tolerance: float,
    feedback: tuple[str | None, int | None] | None = None,
) -> TrainResult | None:
    """The stages in order; shared by both flows (``feedback``: url and window, to retrain)."""
    timings: dict[str, float] = {}
    config = build_config(config_path, budget_pct, seed, ablations)
    uri = _timed(timings, "check_store", check_store_task)
    inputs = _inputs(timings, data, config, model_name, feedback)
    if inputs is None:
        return None
    known = _timed(timings, "trusted", trusted_task, model_name)
    train, test, trusted = _timed(timings, "validate", validate_task, inputs.dataset, config, known)
    contradictions = (0, 0) if known is None else evalset.contradictions(inputs.dataset, known.data)
    if SHUFFLED_LABELS in ablations:
        train = train.shuffled_quality(config.train.seed)
    router = _fit(timings, config, train)
    report = _timed(timings, "evaluate", evaluate_task, router, train, test)
    options = {
        "data": inputs.source,
        "ablations": ",".join(ablations) or "none",
        "model_name": model_name,
        "experiment": experiment,
        "aiq_tolerance": aiq_tolerance,
        "quality_tolerance": quality_tolerance,
        "feedback_rows": inputs.n_feedback,
        "trusted_rows": len(trusted.data),
    }
    # A record lets `mixllm evaluate` find the held-out rows; feedback rows are not in `source`.
    record = None
    if feedback is None:
        record = workflow.make_record(inputs.source, inputs.dataset, train, test, config)
    req = PublishRequest(
        router=router,
        report=report,
        config=config,
        trusted=trusted,
        example_queries=test.queries["query"].head(2).tolist(),
        params={k: str(v) for k, v in options.items()},
        watermark=inputs.watermark,
        record=record,
        fresh_feedback=inputs.fresh,
        contradictions=contradictions,
        name=model_name,
        experiment=experiment,
        aiq_tolerance=aiq_tolerance,
        quality_tolerance=quality_tolerance,
    )
    t0 = time.perf_counter()
    registered = register_task(req, inputs.dataset, timings)
    timings["register"] = round(time.perf_counter() - t0, 3)
    get_run_logger().info(
        "Registered %s v%s as @%s: %s",
        model_name,
        registered.version,
        registered.alias,
        registered.reason,
    )
    return TrainResult(
        model_name=model_name,
        version=registered.version,
        alias=registered.alias,
        reason=registered.reason,
        run_id=registered.run_id,
        model_uri=registered.model_uri,
        tracking_uri=uri,
        evaluation_markdown=report.to_markdown(),
        timings=timings,
        feedback_rows=inputs.n_feedback,
    )


@flow(name="mixllm-train")
def train_flow(
    data: str | None = None,
    budget_pct: float | None = None,
    seed: int | None = None,
    ablations: list[str] | None = None,
    config_path: str | None = None,
    model_name: str = stores.MODEL_NAME,
    experiment: str = stores.EXPERIMENT_NAME,
    aiq_tolerance: float = gate.AIQ_TOLERANCE,
    quality_tolerance: float = gate.QUALITY_TOLERANCE,
) -> TrainResult:
    """Train, evaluate, register and gate one MixLLM router version."""
    result = _pipeline(
        data=data,
        budget_pct=budget_pct,
        seed=seed,
        ablations=list(ablations or []),
        config_path=config_path,
        model_name=model_name,
        experiment=experiment,
        aiq_tolerance=aiq_tolerance,
        quality_tolerance=quality_tolerance,
    )
    if result is None:  # only the feedback path stops early; this is a bug if it happens
        raise RuntimeError("the training pipeline returned no result")
    return result


@flow(name="mixllm-retrain")
def retrain_flow(
    data: str | None = None,
    feedback_url: str | None = None,
    budget_pct: float | None = None,
    seed: int | None = None,
    config_path: str | None = None,
    model_name: str = stores.MODEL_NAME,
    experiment: str = stores.EXPERIMENT_NAME,
    aiq_tolerance: float = gate.AIQ_TOLERANCE,
    quality_tolerance: float = gate.QUALITY_TOLERANCE,
    feedback_window: int | None = None,
) -> TrainResult | None:
    """Retrain on the base data + every stored feedback row (or the newest
    ``feedback_window``); None if no feedback arrived since the champion was trained."""
    return _pipeline(
        data=data,
        budget_pct=budget_pct,
        seed=seed,
        ablations=[],
        config_path=config_path,
        model_name=model_name,
        experiment=experiment,
        aiq_tolerance=aiq_tolerance,
        quality_tolerance=quality_tolerance,
        feedback=(feedback_url, feedback_window),
    )


def retraining_deployment(
    name: str = "mixllm-retrain",
    cron: str = "0 3 * * *",
    data: str | None = None,
    config_path: str | None = None,
    feedback_url: str | None = None,
) -> Any:
    """`retrain_flow` as a deployment on a cron schedule (a RunnerDeployment)."""
    parameters = {"data": data, "config_path": config_path, "feedback_url": feedback_url}
    return retrain_flow.to_deployment(
        name=name,
        cron=cron,
        parameters={k: v for k, v in parameters.items() if v is not None},
        description="Retrain the MixLLM router on base data + new feedback, gate and register.",
        tags=["mixllm"],
    )


def serve_retraining(**kwargs: Any) -> None:
    """Serve the retraining deployment until interrupted (needs a Prefect server)."""
    from prefect import serve

    serve(retraining_deployment(**kwargs))
