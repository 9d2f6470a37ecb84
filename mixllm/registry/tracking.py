"""MLflow tracking and model registry: training runs, versioned routers, the promotion gate.

mlflow is imported inside the functions so that importing this module stays free.
Default stores are embedded in the project: tracking and registry in
``<project>/mlruns/mlflow.db`` (SQLite), artifacts under ``<project>/mlruns/artifacts``.
``MLFLOW_TRACKING_URI`` points everything elsewhere (an ``http://`` MLflow server, or a
database URL such as ``postgresql://...``).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mixllm.core.errors import RegistryError
from mixllm.core.paths import mlruns_dir

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from mixllm.core.types import RoutingData

MODEL_NAME = "mixllm-router"
EXPERIMENT_NAME = "mixllm-training"
CHAMPION = "champion"
CHALLENGER = "challenger"

ARTIFACT_ROOT_ENV = "MIXLLM_ARTIFACT_ROOT"

# Gate tolerances, absolute on the 0-1 quality scale: a new version may lose at most this
# much AIQ and this much mean quality at the calibrated budget against the champion. They
# absorb the noise of retraining on the same data (seeds, LightGBM bagging) so that an
# equivalent retrain still gets promoted, while a real regression does not.
AIQ_TOLERANCE = 0.005
QUALITY_TOLERANCE = 0.01

TAG_GATE = "mixllm.gate"  # the alias the gate gave: champion / challenger
TAG_GATE_REASON = "mixllm.gate_reason"
TAG_WATERMARK = "mixllm.feedback_watermark"  # feedback up to this instant is in the data
TAG_DATA_FINGERPRINT = "mixllm.data_fingerprint"
TAG_VERSION = "mixllm.registered_version"

_DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


# -- stores ------------------------------------------------------------------------------


def tracking_uri() -> str:
    """$MLFLOW_TRACKING_URI, else the project's embedded SQLite store."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{mlruns_dir() / 'mlflow.db'}"


def artifact_location(uri: str | None = None) -> str | None:
    """Where new experiments keep artifacts; None lets an MLflow server decide."""
    env = os.environ.get(ARTIFACT_ROOT_ENV)
    if env:
        return env
    if _scheme(uri or tracking_uri()) in ("http", "https", "databricks"):
        return None
    # A database store without an artifact root would write into the current directory.
    return (mlruns_dir() / "artifacts").as_uri()


def _scheme(uri: str) -> str:
    return urlparse(uri).scheme.split("+", 1)[0]


def _redact(uri: str) -> str:
    """The URI without its password, fit for error messages and logs."""
    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":***@")
    return uri


def _mlflow():
    """mlflow, with telemetry off unless the user asked otherwise."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    return mlflow


def configure(uri: str | None = None) -> str:
    """Point mlflow's tracking and registry at ``uri`` (default: ``tracking_uri()``)."""
    mlflow = _mlflow()
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def client(uri: str | None = None) -> MlflowClient:
    """An MlflowClient on the configured store."""
    uri = configure(uri)
    return _mlflow().MlflowClient(tracking_uri=uri, registry_uri=uri)


def check_tracking(uri: str | None = None, timeout_s: float = 5.0) -> str:
    """Fail fast with RegistryError naming the URI when the tracking store is unreachable."""
    uri = uri or tracking_uri()
    scheme = _scheme(uri)
    try:
        if scheme in ("http", "https"):
            _check_http(uri, timeout_s)
        elif scheme in _DB_SCHEMES and scheme != "sqlite":
            _check_database(uri, timeout_s)
        client(uri).search_experiments(max_results=1)
    except RegistryError:
        raise
    except Exception as exc:
        raise RegistryError(
            f"MLflow tracking store {_redact(uri)} is unreachable: {_first_line(exc)}"
        ) from exc
    return uri


def _check_http(uri: str, timeout_s: float) -> None:
    # mlflow's own client retries for minutes against a dead server; one short probe first.
    import httpx

    try:
        resp = httpx.get(uri.rstrip("/") + "/health", timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise RegistryError(f"MLflow tracking server {_redact(uri)} is unreachable: {exc}") from exc
    if resp.status_code != 200:
        raise RegistryError(
            f"MLflow tracking server {_redact(uri)} is unhealthy: HTTP {resp.status_code}"
        )


def _check_database(uri: str, timeout_s: float) -> None:
    # mlflow's SQLAlchemy store retries its first connection for a long time; probe once.
    import sqlalchemy

    args = {"connect_timeout": int(max(1, timeout_s))} if _scheme(uri) == "postgresql" else {}
    engine = sqlalchemy.create_engine(uri, connect_args=args, poolclass=sqlalchemy.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except Exception as exc:
        raise RegistryError(
            f"MLflow tracking database {_redact(uri)} is unreachable: {_first_line(exc)}"
        ) from exc
    finally:
        engine.dispose()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def ensure_experiment(name: str = EXPERIMENT_NAME, uri: str | None = None) -> str:
    """Id of experiment ``name``, created with the project's artifact location if missing."""
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is None:
        try:
            return c.create_experiment(name, artifact_location=artifact_location(uri))
        except Exception:
            # Another run created it between the lookup and the create.
            exp = c.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        c.restore_experiment(exp.experiment_id)
    return exp.experiment_id


# -- the promotion gate ------------------------------------------------------------------


@dataclass(frozen=True)
class GateScores:
    """What the gate compares, measured on one held-out split."""

    aiq: float
    quality: float  # mean recorded quality at the calibrated budget
    cost: float  # mean recorded cost per query at that budget, $
    budget_usd: float


@dataclass(frozen=True)
class GateDecision:
    """The alias a new version gets, and why."""

    alias: str
    reason: str
    candidate: GateScores
    champion: GateScores | None = None
    champion_version: str | None = None

    @property
    def promoted(self) -> bool:
        """Whether the new version becomes the champion."""
        return self.alias == CHAMPION


def _finite(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


def decide(
    candidate: GateScores,
    champion: GateScores | None,
    champion_version: str | None = None,
    *,
    aiq_tolerance: float = AIQ_TOLERANCE,
    quality_tolerance: float = QUALITY_TOLERANCE,
    champion_error: str | None = None,
) -> GateDecision:
    """Champion if not worse than the champion in AIQ and quality at budget, else challenger."""
    if champion_version is None:
        return GateDecision(
            CHAMPION, "no champion yet: the first version becomes champion", candidate
        )
    if champion is None:
        # A champion that cannot be scored on this split cannot be beaten safely; a human decides.
        reason = f"champion v{champion_version} could not be evaluated ({champion_error})"
        return GateDecision(CHALLENGER, reason, candidate, None, champion_version)
    d_aiq = _finite(candidate.aiq) - _finite(champion.aiq)
    d_q = _finite(candidate.quality) - _finite(champion.quality)
    figures = (
        f"AIQ {candidate.aiq:.4f} vs {champion.aiq:.4f} (tolerance {aiq_tolerance}), "
        f"quality at ${candidate.budget_usd:.6f}/query {candidate.quality:.4f} vs "
        f"{champion.quality:.4f} (tolerance {quality_tolerance}), same held-out split"
    )
    worse = [
        name
        for name, d, tol in (
            ("AIQ", d_aiq, aiq_tolerance),
            ("quality at budget", d_q, quality_tolerance),
        )
        if not d >= -tol
    ]
    if worse:
        reason = f"worse than champion v{champion_version} in {' and '.join(worse)}: {figures}"
        return GateDecision(CHALLENGER, reason, candidate, champion, champion_version)
    reason = f"not worse than champion v{champion_version}: {figures}"
    return GateDecision(CHAMPION, reason, candidate, champion, champion_version)


def gate_scores(router: Any, test: RoutingData, budget_usd: float | None = None) -> GateScores:
    """AIQ of ``router`` on ``test`` and its recorded quality at ``budget_usd``.

    ``budget_usd`` None: the router's own calibrated budget (the new version's); the champion
    is then scored at that same budget in dollars, so both face the same spending limit.
    """
    from mixllm.evaluation.protocol import scores_from_predictions
    from mixllm.evaluation.scoring import evaluate_scores

    decisions = router.route_batch(test.queries, budget_usd=budget_usd)
    sweep = scores_from_predictions(
        router.predict(test.queries), test.llms, router.cfg.bandit.alpha
    )
    result = evaluate_scores(test, {"router": sweep}, calibrated={"router": decisions})
    r = result.routers["router"]
    return GateScores(r.aiq, r.mean_quality, r.mean_cost, float(decisions[0].budget_usd))


def current_alias_version(name: str, alias: str, uri: str | None = None) -> str | None:
    """Version number behind ``name@alias``, None if the model or alias does not exist."""
    try:
        return str(client(uri).get_model_version_by_alias(name, alias).version)
    except Exception as exc:
        if _is_missing(exc):
            return None
        raise RegistryError(f"cannot read {name}@{alias}: {_first_line(exc)}") from exc


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc).lower()


def evaluate_champion(
    score: Callable[[Any], GateScores], name: str = MODEL_NAME, uri: str | None = None
) -> tuple[str | None, GateScores | None, str | None]:
    """(champion version, its scores from ``score``, error) for the gate; all None if none."""
    version = current_alias_version(name, CHAMPION, uri)
    if version is None:
        return None, None, None
    try:
        router, _ = load_version(name, version, uri)
        return version, score(router), None
    except Exception as exc:
        # Whatever stops the champion from being scored here (LLMs missing from this data,
        # an artifact that no longer loads) is reported by the gate, not raised.
        return version, None, f"{type(exc).__name__}: {_first_line(exc)}"


# -- loading -----------------------------------------------------------------------------


def load_version(name: str, version: str, uri: str | None = None) -> tuple[Any, str]:
    """The MixLLMRouter registered as ``name`` version ``version``."""
    return _load_router(f"models:/{name}/{version}", uri), str(version)


def load_champion(name: str = MODEL_NAME, uri: str | None = None) -> tuple[Any, str]:
    """(router, version) of ``name@champion``; RegistryError if there is none."""
    version = current_alias_version(name, CHAMPION, uri)
    if version is None:
        raise RegistryError(
            f"no {name}@{CHAMPION} in the registry at {_redact(uri or tracking_uri())}"
        )
    return load_version(name, version, uri)


def _load_router(model_uri: str, uri: str | None) -> Any:
    configure(uri)
    mlflow = _mlflow()
    from mixllm.registry.pyfunc import unwrap_router

    return unwrap_router(mlflow.pyfunc.load_model(model_uri))


# -- runs and registration ---------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredVersion:
    """The outcome of one training run in the registry."""

    name: str
    version: str
    alias: str
    reason: str
    run_id: str
    experiment_id: str
    model_uri: str


@contextmanager
def training_run(
    experiment: str = EXPERIMENT_NAME,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    uri: str | None = None,
) -> Iterator[str]:
    """An active MLflow run (FAILED with the error as a tag if the block raises); yields its id."""
    mlflow = _mlflow()
    experiment_id = ensure_experiment(experiment, uri)
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=run_name, tags=dict(tags or {})
    ) as run:
        try:
            yield run.info.run_id
        except BaseException as exc:
            # Best effort: a store that just went away must not hide the original error.
            with contextlib.suppress(Exception):
                mlflow.set_tag("mixllm.error", f"{type(exc).__name__}: {_first_line(exc)}"[:5000])
            raise


def log_files(files: Mapping[str, str | Path]) -> None:
    """Log local files into the active run: {"dir/name.ext": local path}."""
    mlflow = _mlflow()
    for target, path in files.items():
        folder = str(Path(target).parent)
        mlflow.log_artifact(str(path), artifact_path=None if folder == "." else folder)


def data_fingerprint(data: RoutingData) -> dict[str, Any]:
    """The dataset's content hash (``workflow.data_fingerprint``) with its shape and sources."""
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


def register(
    model_uri: str,
    decision: GateDecision,
    *,
    run_id: str,
    model_id: str | None = None,
    name: str = MODEL_NAME,
    tags: Mapping[str, str] | None = None,
    uri: str | None = None,
    after: Callable[[ModelVersion], None] | None = None,
) -> ModelVersion:
    """Register ``model_uri`` as a new version of ``name`` and alias it as decided.

    All or nothing: if anything after creating the version fails (including ``after``, a
    hook for the caller's own bookkeeping), the version (and the registered model, if this
    call created it) is deleted again and RegistryError raised.
    """
    c = client(uri)
    created_model = _ensure_registered_model(c, name)
    version_tags = {
        TAG_GATE: decision.alias,
        TAG_GATE_REASON: decision.reason[:5000],
        **(tags or {}),
    }
    previous = None if created_model else current_alias_version(name, decision.alias, uri)
    mv = None
    try:
        mv = c.create_model_version(
            name,
            source=model_uri,
            run_id=run_id,
            tags=version_tags,
            description=decision.reason,
            model_id=model_id,
        )
        c.set_registered_model_alias(name, decision.alias, mv.version)
        if after is not None:
            after(mv)
        return mv
    except Exception as exc:
        try:
            _rollback(c, name, mv, created_model, (decision.alias, previous))
        except Exception as undo:
            where = f"version {mv.version}" if mv is not None else "the registered model"
            raise RegistryError(
                f"registering {name} failed ({_first_line(exc)}) and undoing it failed too "
                f"({_first_line(undo)}): check {where} by hand"
            ) from exc
        raise RegistryError(
            f"registering {name} failed, registry left as it was: {_first_line(exc)}"
        ) from exc


def _ensure_registered_model(c: MlflowClient, name: str) -> bool:
    """Create the registered model if missing; True if this call created it."""
    try:
        c.get_registered_model(name)
        return False
    except Exception as exc:
        if not _is_missing(exc):
            raise
    try:
        c.create_registered_model(name, description="MixLLM routers, one version per training run")
        return True
    except Exception:
        c.get_registered_model(name)  # created concurrently: fine, it is not ours to delete
        return False


def _rollback(
    c: MlflowClient,
    name: str,
    mv: ModelVersion | None,
    created_model: bool,
    alias: tuple[str, str | None],
) -> None:
    """Undo a half-done registration: alias back where it was, new version and model gone."""
    label, previous = alias
    if previous is not None:
        with contextlib.suppress(Exception):  # an alias MLflow refused never moved
            c.set_registered_model_alias(name, label, previous)
    if mv is not None:
        c.delete_model_version(name, mv.version)
    if created_model:
        c.delete_registered_model(name)


def recheck_champion(
    decision: GateDecision, name: str = MODEL_NAME, uri: str | None = None
) -> GateDecision:
    """Demote a promotion if the champion moved while this run was gating (concurrent runs)."""
    if not decision.promoted:
        return decision
    now = current_alias_version(name, CHAMPION, uri)
    if now == decision.champion_version:
        return decision
    reason = (
        f"champion moved to v{now} during this run (gated against "
        f"v{decision.champion_version}); retrain to compare against it"
    )
    return GateDecision(
        CHALLENGER, reason, decision.candidate, decision.champion, decision.champion_version
    )


def feedback_watermark(name: str = MODEL_NAME, uri: str | None = None) -> str | None:
    """The champion's feedback watermark (ISO time), None without a champion or watermark."""
    version = current_alias_version(name, CHAMPION, uri)
    if version is None:
        return None
    return client(uri).get_model_version(name, version).tags.get(TAG_WATERMARK)


def publish(
    router: Any,
    test: RoutingData,
    report: Any,
    *,
    config: Any,
    files: Mapping[str, str | Path] | None = None,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, str] | None = None,
    fingerprint: Mapping[str, Any] | None = None,
    watermark: str | None = None,
    record: Any = None,
    name: str = MODEL_NAME,
    experiment: str = EXPERIMENT_NAME,
    aiq_tolerance: float = AIQ_TOLERANCE,
    quality_tolerance: float = QUALITY_TOLERANCE,
    uri: str | None = None,
) -> RegisteredVersion:
    """Log a training run (params, metrics, files, model) and register its router, gated.

    The gate scores the current champion on this run's held-out ``test`` split; the
    registry is only written at the very end, all or nothing (see ``register``).
    """
    mlflow = _mlflow()
    t0 = time.perf_counter()
    tags = {TAG_DATA_FINGERPRINT: fingerprint["fingerprint"]} if fingerprint else {}
    if watermark:
        tags[TAG_WATERMARK] = watermark
    with training_run(experiment, tags=tags, uri=uri) as run_id:
        mlflow.log_params({**config.flat(), **{f"flow.{k}": v for k, v in (params or {}).items()}})
        mlflow.log_metrics({**report_metrics(report), **(metrics or {})})
        log_files(files or {})
        decision = _gate(router, test, name, uri, aiq_tolerance, quality_tolerance)
        mlflow.log_metrics(_gate_metrics(decision))
        info = log_router(router, test.queries["query"].head(2).tolist(), tags, record)
        decision = recheck_champion(decision, name, uri)

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
            name=name,
            tags=tags,
            uri=uri,
            after=bookkeeping,
        )
        return RegisteredVersion(
            name=name,
            version=str(mv.version),
            alias=decision.alias,
            reason=decision.reason,
            run_id=run_id,
            experiment_id=mlflow.get_run(run_id).info.experiment_id,
            model_uri=f"models:/{name}/{mv.version}",
        )


def log_router(
    router: Any, example_queries: list[str], tags: Mapping[str, str], record: Any = None
) -> Any:
    """Log the router as the run's pyfunc model (see ``mixllm.registry.pyfunc``)."""
    from mixllm.registry import pyfunc as mlflow_model

    return mlflow_model.log_router(
        router, example_queries=example_queries, extra_metadata=dict(tags), record=record
    )


def _gate(
    router: Any,
    test: RoutingData,
    name: str,
    uri: str | None,
    aiq_tolerance: float,
    quality_tolerance: float,
) -> GateDecision:
    """Score the new router, then the champion on the same split at the same $ budget."""
    candidate = gate_scores(router, test)
    version, champion, error = evaluate_champion(
        lambda r: gate_scores(r, test, candidate.budget_usd), name, uri
    )
    return decide(
        candidate,
        champion,
        version,
        aiq_tolerance=aiq_tolerance,
        quality_tolerance=quality_tolerance,
        champion_error=error,
    )


def _gate_metrics(decision: GateDecision) -> dict[str, float]:
    out = {f"gate_{k}": v for k, v in asdict(decision.candidate).items()}
    if decision.champion is not None:
        out.update({f"gate_champion_{k}": v for k, v in asdict(decision.champion).items()})
    out["gate_promoted"] = float(decision.promoted)
    return {k: float(v) for k, v in out.items() if math.isfinite(float(v))}
