"""Publishing one training run: log it to MLflow, gate its router on the trusted set and
register it, all or nothing (the registry is written only at the very end)."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixllm.core.errors import first_line
from mixllm.registry.evalset import TrustedSet, log_trusted
from mixllm.registry.gate import (
    AIQ_TOLERANCE,
    QUALITY_TOLERANCE,
    feedback_report,
    gate_metrics,
    load_champion_for_gate,
    recheck_champion,
    run_gate,
)
from mixllm.registry.stores import (
    EXPERIMENT_NAME,
    MODEL_NAME,
    TAG_DATA_FINGERPRINT,
    TAG_GATE,
    TAG_GATE_REASON,
    TAG_VERSION,
    TAG_WATERMARK,
    ensure_experiment,
    mlflow_module,
)
from mixllm.registry.versions import RegisteredVersion, register

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

    from mixllm.core.config import MixLLMConfig
    from mixllm.core.types import RoutingData
    from mixllm.data.splits import TrainingRecord
    from mixllm.evaluation.report import EvaluationReport
    from mixllm.routing.router import MixLLMRouter


@dataclass(frozen=True)
class PublishRequest:
    """Everything one training run hands to the registry."""

    router: MixLLMRouter
    report: EvaluationReport  # the run's own evaluation (its held-out rows), logged
    config: MixLLMConfig
    trusted: TrustedSet  # what the gate scores candidate and champion on
    example_queries: list[str]
    files: Mapping[str, Path] = field(default_factory=dict)  # {"dir/name.ext": local file}
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)  # logged as ``flow.<key>``
    fingerprint: Mapping[str, Any] | None = None  # ``data_fingerprint`` of the data
    watermark: str | None = None  # largest feedback id in the training data
    record: TrainingRecord | None = None  # lets ``mixllm evaluate`` find the held-out rows
    fresh_feedback: pd.DataFrame | None = None  # feedback since the champion, reported on
    # (rows of the data repeating a trusted query, how many contradict it): see gate.check_data
    contradictions: tuple[int, int] = (0, 0)
    name: str = MODEL_NAME
    experiment: str = EXPERIMENT_NAME
    aiq_tolerance: float = AIQ_TOLERANCE
    quality_tolerance: float = QUALITY_TOLERANCE
    uri: str | None = None

    def tags(self) -> dict[str, str]:
        """Tags of the run and of the version (trusted-set tags come with the run id)."""
        tags = {TAG_DATA_FINGERPRINT: self.fingerprint["fingerprint"]} if self.fingerprint else {}
        if self.watermark:
            tags[TAG_WATERMARK] = self.watermark
        return tags


def publish(req: PublishRequest) -> RegisteredVersion:
    """Log a training run (params, metrics, files, model) and register its router, gated.

    The gate scores the new router and the current champion on the registry's trusted set;
    the reason of its decision is a tag and the description of the new version.
    """
    mlflow = mlflow_module()
    t0 = time.perf_counter()
    with training_run(req.experiment, tags=req.tags(), uri=req.uri) as run_id:
        flow_params = {f"flow.{k}": v for k, v in req.params.items()}
        mlflow.log_params({**req.config.flat(), **flow_params})
        mlflow.log_metrics({**report_metrics(req.report), **req.metrics})
        log_files(req.files)
        if req.trusted.run_id is None:
            log_trusted(req.trusted)
        champion = load_champion_for_gate(req.name, req.uri)
        decision = run_gate(
            req.router,
            req.trusted.data,
            champion,
            contradictions=req.contradictions,
            aiq_tolerance=req.aiq_tolerance,
            quality_tolerance=req.quality_tolerance,
        )
        report = feedback_report(
            {"candidate": req.router, "champion": champion[1]}, req.fresh_feedback
        )
        shared, contradicting = req.contradictions
        checks = {"trusted_shared_rows": shared, "trusted_contradicting_rows": contradicting}
        mlflow.log_metrics({**gate_metrics(decision), **report, **checks})
        tags = {**req.tags(), **req.trusted.tags(run_id)}
        info = log_router(req.router, req.example_queries, tags, req.record)
        decision = recheck_champion(decision, req.name, req.uri)

        def bookkeeping(mv: ModelVersion) -> None:
            mlflow.set_tags(
                {
                    TAG_GATE: decision.alias,
                    TAG_GATE_REASON: decision.reason[:5000],
                    TAG_VERSION: str(mv.version),
                }
            )
            mlflow.log_metric("time_register_s", time.perf_counter() - t0)

        mv = register(
            info.model_uri,
            decision,
            run_id=run_id,
            model_id=info.model_id,
            name=req.name,
            tags=tags,
            uri=req.uri,
            after=bookkeeping,
        )
        return RegisteredVersion(
            name=req.name,
            version=str(mv.version),
            alias=decision.alias,
            reason=decision.reason,
            run_id=run_id,
            experiment_id=mlflow.get_run(run_id).info.experiment_id,
            model_uri=f"models:/{req.name}/{mv.version}",
        )


@contextmanager
def training_run(
    experiment: str = EXPERIMENT_NAME,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    uri: str | None = None,
) -> Iterator[str]:
    """An active MLflow run (FAILED with the error as a tag if the block raises); yields its id."""
    mlflow = mlflow_module()
    experiment_id = ensure_experiment(experiment, uri)
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=run_name, tags=dict(tags or {})
    ) as run:
        try:
            yield run.info.run_id
        except BaseException as exc:
            # Best effort: a store that just went away must not hide the original error.
            with contextlib.suppress(Exception):
                mlflow.set_tag("mixllm.error", f"{type(exc).__name__}: {first_line(exc)}"[:5000])
            raise


def log_files(files: Mapping[str, str | Path]) -> None:
    """Log local files into the active run: {"dir/name.ext": local path}."""
    mlflow = mlflow_module()
    for target, path in files.items():
        folder = str(Path(target).parent)
        mlflow.log_artifact(str(path), artifact_path=None if folder == "." else folder)


def data_fingerprint(data: RoutingData) -> dict[str, Any]:
    """The dataset's content hash (``splits.data_fingerprint``) with its shape and sources."""
    from mixllm.data.splits import data_fingerprint as content_hash

    sources = data.queries["source"].value_counts().sort_index()
    return {
        "fingerprint": content_hash(data),
        "n_queries": len(data),
        "llms": list(data.llms),
        "sources": {str(k): int(v) for k, v in sources.items()},
        "load_report": data.report.summary() if data.report else None,
    }


def report_metrics(report: Any) -> dict[str, float]:
    """Every finite number of an EvaluationReport as MLflow metrics, e.g. ``aiq.mixllm``."""
    out: dict[str, float] = {}
    for router, values in report.to_json()["routers"].items():
        for key, value in values.items():
            if isinstance(value, dict):
                for sub, v in value.items():
                    out[f"{key}_{sub}.{router}"] = v
            else:
                out[f"{key}.{router}"] = value
    for name, (cost, quality) in report.calibrated.items():
        out[f"calibrated_cost.{name}"] = cost
        out[f"calibrated_quality.{name}"] = quality
    return {
        _metric_key(k): float(v)
        for k, v in out.items()
        if v is not None and math.isfinite(float(v))
    }


def _metric_key(key: str) -> str:
    # MLflow keys allow letters, digits, _ - . space / ; router names may hold @ and %.
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in key)


def log_router(
    router: Any, example_queries: list[str], tags: Mapping[str, str], record: Any = None
) -> Any:
    """Log the router as the run's pyfunc model (see ``mixllm.registry.pyfunc``)."""
    from mixllm.registry import pyfunc

    return pyfunc.log_router(
        router, example_queries=example_queries, extra_metadata=dict(tags), record=record
    )
