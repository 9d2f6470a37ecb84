"""The MLflow stores: where tracking and registry live, reachability probes, and reading
registered versions back.

mlflow is imported inside the functions so that importing this module stays free.
Default stores are embedded in the project: tracking and registry in
``<project>/mlruns/mlflow.db`` (SQLite), artifacts under ``<project>/mlruns/artifacts``.
``MLFLOW_TRACKING_URI`` points everything elsewhere (an ``http://`` MLflow server, or a
database URL such as ``postgresql://...``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mixllm.core.errors import RegistryError, first_line
from mixllm.core.paths import mlruns_dir
from mixllm.registry.messages import redact_url

if TYPE_CHECKING:
    from mlflow import MlflowClient

MODEL_NAME = "mixllm-router"
EXPERIMENT_NAME = "mixllm-training"
CHAMPION = "champion"
CHALLENGER = "challenger"

ARTIFACT_ROOT_ENV = "MIXLLM_ARTIFACT_ROOT"

TAG_GATE = "mixllm.gate"  # the alias the gate gave: champion / challenger
TAG_GATE_REASON = "mixllm.gate_reason"
# The largest feedback id in the version's training data (older versions: an ISO time).
TAG_WATERMARK = "mixllm.feedback_watermark"
TAG_DATA_FINGERPRINT = "mixllm.data_fingerprint"
TAG_VERSION = "mixllm.registered_version"

_DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


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


def mlflow_module() -> Any:
    """mlflow, with telemetry off unless the user asked otherwise."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    return mlflow


def configure(uri: str | None = None) -> str:
    """Point mlflow's tracking and registry at ``uri`` (default: ``tracking_uri()``)."""
    mlflow = mlflow_module()
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def client(uri: str | None = None) -> MlflowClient:
    """An MlflowClient on the configured store."""
    uri = configure(uri)
    return mlflow_module().MlflowClient(tracking_uri=uri, registry_uri=uri)


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
            f"MLflow tracking store {redact_url(uri)} is unreachable: {first_line(exc)}"
        ) from exc
    return uri


def _check_http(uri: str, timeout_s: float) -> None:
    # mlflow's own client retries for minutes against a dead server; one short probe first.
    import httpx

    try:
        resp = httpx.get(uri.rstrip("/") + "/health", timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise RegistryError(
            f"MLflow tracking server {redact_url(uri)} is unreachable: {exc}"
        ) from exc
    if resp.status_code != 200:
        raise RegistryError(
            f"MLflow tracking server {redact_url(uri)} is unhealthy: HTTP {resp.status_code}"
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
            f"MLflow tracking database {redact_url(uri)} is unreachable: {first_line(exc)}"
        ) from exc
    finally:
        engine.dispose()


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


def is_missing(exc: Exception) -> bool:
    """Whether an MLflow error says the model, version or alias does not exist."""
    code = getattr(exc, "error_code", "")
    return code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc).lower()


def current_alias_version(name: str, alias: str, uri: str | None = None) -> str | None:
    """Version number behind ``name@alias``, None if the model or alias does not exist."""
    try:
        return str(client(uri).get_model_version_by_alias(name, alias).version)
    except Exception as exc:
        if is_missing(exc):
            return None
        raise RegistryError(f"cannot read {name}@{alias}: {first_line(exc)}") from exc


def feedback_watermark(name: str = MODEL_NAME, uri: str | None = None) -> str | None:
    """The champion's feedback watermark tag, None without a champion or watermark."""
    version = current_alias_version(name, CHAMPION, uri)
    if version is None:
        return None
    return client(uri).get_model_version(name, version).tags.get(TAG_WATERMARK)


def load_version(
    name: str, version: str, uri: str | None = None, encoder_threads: int | None = None
) -> tuple[Any, str]:
    """The MixLLMRouter registered as ``name`` version ``version``; ``encoder_threads``: its
    encoder's ONNX Runtime threads where it is loaded (0: one per core; None: as trained)."""
    configure(uri)
    from mixllm.registry.pyfunc import ENCODER_THREADS, unwrap_router

    model_uri = f"models:/{name}/{version}"
    config = None
    if encoder_threads is not None and _accepts(model_uri, ENCODER_THREADS):
        config = {ENCODER_THREADS: int(encoder_threads)}
    model = mlflow_module().pyfunc.load_model(model_uri, model_config=config)
    return unwrap_router(model), str(version)


def _accepts(model_uri: str, key: str) -> bool:
    """True if the model was logged with ``key`` in its model config, so a loader may set it.
    Versions registered before the key existed load as trained (their caller adjusts them
    after loading); MLflow would only warn that the key was ignored."""
    flavor = mlflow_module().models.get_model_info(model_uri).flavors.get("python_function", {})
    return key in (flavor.get("config") or {})


def load_champion(name: str = MODEL_NAME, uri: str | None = None) -> tuple[Any, str]:
    """(router, version) of ``name@champion``; RegistryError if there is none."""
    version = current_alias_version(name, CHAMPION, uri)
    if version is None:
        raise RegistryError(
            f"no {name}@{CHAMPION} in the registry at {redact_url(uri or tracking_uri())}"
        )
    return load_version(name, version, uri)
