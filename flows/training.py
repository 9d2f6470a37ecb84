"""Prefect flows of the training pipeline: `train_flow` (one tracked, gated training run) and
`retrain_flow` (the same on base data + every feedback row stored, once new feedback arrived).

The flows only sequence library calls: each stage is a small task over `mixllm/`, timed,
and nothing touches the model registry before the final `register` task, which registers
and aliases all-or-nothing. Embeddings and the tag-enhanced encoder are cached across runs
by the library (content-addressed, under the encoder's cache directory).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd
from prefect import flow, get_run_logger

from flows.task_runners import EnvTaskRunner
from flows.training_tasks import (
    FEEDBACK_SOURCE,
    check_store_task,
    embed_task,
    evaluate_router_task,
    evaluation_inputs_task,
    feedback_rows,
    feedback_task,
    fit_fold_task,
    fit_llm_task,
    load_task,
    publish_evaluation,
    register_task,
    tag_task,
    trusted_task,
    validate_task,
)
from mixllm.core.config import MixLLMConfig
from mixllm.core.errors import ConfigError
from mixllm.core.paths import default_data_path
from mixllm.core.types import RoutingData
from mixllm.data import splits as workflow
from mixllm.data.long_format import long_from_frame
from mixllm.evaluation.evaluate import EvaluationRun, evaluated_routers, score_run
from mixllm.evaluation.report import EvaluationReport
from mixllm.registry import evalset, gate, stores
from mixllm.registry.publish import PublishRequest
from mixllm.routing.predictor_fit import LLMFit, LLMModels
from mixllm.routing.router import MixLLMRouter
from mixllm.routing.training import Training
from mixllm.tools.benchmark_report import ABLATIONS as BENCHMARK_ABLATIONS

T = TypeVar("T")

# The negative control: quality labels permuted across training queries, so the predictors
# learn nothing about the query; the gate must never promote such a model.
SHUFFLED_LABELS = "shuffled-labels"
# The benchmark's ablations under their short names (no-tags, no-finetune, no-uncertainty).
ABLATIONS: dict[str, dict[str, dict[str, Any]]] = {
    **{name.removeprefix("mixllm-"): update for name, update in BENCHMARK_ABLATIONS.items()},
    SHUFFLED_LABELS: {},
}


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


def _on_runner(task: Any) -> Callable[..., Any]:
    """Run ``task`` on the flow run's task runner (threads, or Dask workers: see
    ``flows.task_runners``) and wait for its result."""
    return lambda *args: task.submit(*args).result()


def _fan_out(groups: dict[str, list[LLMFit]]) -> dict[str, list[LLMModels]]:
    """One ``fit_llm_task`` per LLM fit of every group (a stage), all submitted before any
    is awaited, so they run side by side on the task runner; results in order."""
    futures = {name: [fit_llm_task.submit(name, f) for f in fits] for name, fits in groups.items()}
    return {name: [f.result() for f in fs] for name, fs in futures.items()}


def _fit(timings: dict[str, float], config: MixLLMConfig, train: RoutingData) -> MixLLMRouter:
    """The training stages, in the same order as ``Training.fit``. Tag and embed return the
    trainer they changed (on a Dask worker they change a copy); the predictors and the
    refit fan out one task per LLM, cross-fitting one task per fold, and the flow puts the
    fitted models together with the library's own functions (the same models as
    ``Training.fit``, whichever the runner)."""
    trainer = Training.start(config)
    trainer, tags0 = _timed(timings, "tag", _on_runner(tag_task), trainer, train)
    trainer, X, tags = _timed(timings, "embed", _on_runner(embed_task), trainer, train, tags0)

    def predictors() -> None:
        fits = trainer.predictor_fits(train, X, tags)
        trainer.take_predictors(train, X, _fan_out({"predictors": fits})["predictors"])

    def calibrate() -> None:
        folds = trainer.calibration_folds(train, X, tags)
        futures = [fit_fold_task.submit(f"calibrate-fold{i}", f.fits) for i, f in enumerate(folds)]
        fitted = [f.result() for f in futures]
        trainer.calibrate(train, X, tags, list(zip(folds, fitted, strict=True)))

    def refit() -> None:
        trainer.take_refit(_fan_out({"refit": trainer.refit_fits(train, X, tags)})["refit"])

    _timed(timings, "train_predictors", predictors)
    _timed(timings, "calibrate", calibrate)
    if config.train.refit_full:
        _timed(timings, "refit", refit)
    return MixLLMRouter.serving(trainer.freeze())


def _evaluate(router: MixLLMRouter, train: RoutingData, test: RoutingData) -> EvaluationReport:
    """MixLLM and every baseline on the held-out split: the shared inputs in one task, then
    one task per router (fit + output), all submitted together; scored here, in the order
    and with the code of ``evaluate_router``."""
    shared = evaluation_inputs_task.submit(router, train, test)
    inputs = shared.result()
    # the tasks get the future: on Dask the inputs stay on the cluster (no round trip)
    routers = evaluated_routers(router, inputs, seed=router.cfg.train.seed)
    futures = {name: evaluate_router_task.submit(name, r, shared) for name, r in routers.items()}
    outputs = {name: f.result() for name, f in futures.items()}
    present = {name: out for name, out in outputs.items() if out is not None}
    report = score_run(EvaluationRun.of(inputs, present))
    publish_evaluation(report, len(test))
    return report


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
    report = _timed(timings, "evaluate", _evaluate, router, train, test)
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


@flow(name="mixllm-train", task_runner=EnvTaskRunner())
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


@flow(name="mixllm-retrain", task_runner=EnvTaskRunner())
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
    feedback_window: int | None = None,
) -> Any:
    """`retrain_flow` as a deployment on a cron schedule (a RunnerDeployment)."""
    parameters = {
        "data": data,
        "config_path": config_path,
        "feedback_url": feedback_url,
        "feedback_window": feedback_window,
    }
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
