"""The MLflow glue alone: store defaults, reachability, the gate, all-or-nothing registration."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from mixllm.core import paths
from mixllm.core.errors import RegistryError
from mixllm.registry import stores as registry
from mixllm.registry.gate import GateDecision, GateScores, decide, recheck_champion
from mixllm.registry.publish import training_run
from mixllm.registry.stores import CHALLENGER, CHAMPION
from mixllm.registry.versions import register
from tests.servers import free_port

pytestmark = pytest.mark.flow

GOOD = GateScores(aiq=0.80, quality=0.90, cost=1e-4, budget_usd=2e-4)


def test_default_store_is_embedded_in_the_project(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(registry.ARTIFACT_ROOT_ENV, raising=False)
    monkeypatch.delenv(paths.PROJECT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert registry.tracking_uri() == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert registry.artifact_location() == (tmp_path / "mlruns" / "artifacts").as_uri()
    # Never next to the installed package (site-packages in a wheel install).
    package = Path(registry.__file__).resolve().parents[2]
    assert str(package) not in registry.tracking_uri()
    project = tmp_path / "elsewhere"
    monkeypatch.setenv(paths.PROJECT_ENV, str(project))
    assert registry.tracking_uri() == f"sqlite:///{project / 'mlruns' / 'mlflow.db'}"


def test_stores_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(registry.ARTIFACT_ROOT_ENV, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert registry.tracking_uri() == "http://127.0.0.1:5999"
    assert registry.artifact_location() is None  # the server decides
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://u:secret@db/mlflow")
    assert registry.artifact_location().endswith("/mlruns/artifacts")


def test_unreachable_server_fails_fast_naming_the_uri() -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(RegistryError, match=uri.replace(".", r"\.")):
        registry.check_tracking(uri)
    assert time.monotonic() - t0 < 10


def test_unreachable_database_fails_fast_without_leaking_the_password() -> None:
    uri = f"postgresql://mixllm:hunter2@127.0.0.1:{free_port()}/mlflow"
    with pytest.raises(RegistryError) as info:
        registry.check_tracking(uri)
    assert "127.0.0.1" in str(info.value) and "hunter2" not in str(info.value)


def test_first_version_becomes_champion() -> None:
    decision = decide(GOOD, None, None)
    assert decision.alias == CHAMPION and "first version" in decision.reason


def test_equal_within_tolerance_is_promoted() -> None:
    champion = GateScores(aiq=0.803, quality=0.905, cost=1e-4, budget_usd=2e-4)
    decision = decide(GOOD, champion, "3")
    assert decision.promoted and "not worse than champion v3" in decision.reason


@pytest.mark.parametrize(
    ("champion", "worse_in"),
    [
        (GateScores(0.85, 0.90, 1e-4, 2e-4), "AIQ"),
        (GateScores(0.80, 0.95, 1e-4, 2e-4), "quality at budget"),
        (GateScores(0.90, 0.99, 1e-4, 2e-4), "AIQ and quality at budget"),
    ],
)
def test_worse_than_champion_is_challenger(champion: GateScores, worse_in: str) -> None:
    decision = decide(GOOD, champion, "2")
    assert decision.alias == CHALLENGER
    assert f"worse than champion v2 in {worse_in}:" in decision.reason
    assert "tolerance" in decision.reason


def test_nan_quality_never_wins() -> None:
    nan_q = GateScores(aiq=0.9, quality=math.nan, cost=math.nan, budget_usd=2e-4)
    assert decide(nan_q, GOOD, "1").alias == CHALLENGER


def test_unscorable_champion_keeps_its_alias() -> None:
    decision = decide(GOOD, None, "4", champion_error="UnknownLLMError: x")
    assert decision.alias == CHALLENGER and "could not be evaluated" in decision.reason


def _tiny_model_uri() -> tuple[str, str, str]:
    """Log a trivial pyfunc model; (model uri, model id, run id)."""
    import mlflow

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context: object, model_input: list[str]) -> list[str]:
            return model_input

    with training_run(run_name="tiny") as run_id:
        info = mlflow.pyfunc.log_model(name="m", python_model=Echo(), pip_requirements=["mlflow"])
    return info.model_uri, info.model_id, run_id


def _snapshot(name: str) -> dict[str, object]:
    c = registry.client()
    models = {m.name: dict(m.aliases) for m in c.search_registered_models()}
    versions = sorted(str(v.version) for v in c.search_model_versions(f"name='{name}'"))
    return {"models": models, "versions": versions}


def test_registration_is_all_or_nothing(mlflow_store: str) -> None:
    uri, model_id, run_id = _tiny_model_uri()
    first = decide(GOOD, None, None)
    mv = register(uri, first, run_id=run_id, model_id=model_id, name="tiny")
    assert str(mv.version) == "1" and registry.current_alias_version("tiny", CHAMPION) == "1"
    before = _snapshot("tiny")

    def fail(_mv: object) -> None:
        raise RuntimeError("bookkeeping failed")

    with pytest.raises(RegistryError, match="left as it was"):
        register(uri, first, run_id=run_id, name="tiny", after=fail)
    # An alias MLflow refuses fails after the version exists: it must be rolled back too.
    reserved = GateDecision("latest", "reserved alias", GOOD)
    with pytest.raises(RegistryError, match="reserved"):
        register(uri, reserved, run_id=run_id, name="tiny")
    assert _snapshot("tiny") == before
    # A model this call created is removed again with its only version.
    with pytest.raises(RegistryError):
        register(uri, reserved, run_id=run_id, name="other")
    assert "other" not in _snapshot("tiny")["models"]


def test_recheck_demotes_when_the_champion_moved(mlflow_store: str) -> None:
    uri, _, run_id = _tiny_model_uri()
    register(uri, decide(GOOD, None, None), run_id=run_id, name="moved")
    stale = decide(GOOD, GOOD, None)  # gated when there was no champion yet
    again = recheck_champion(stale, name="moved")
    assert again.alias == CHALLENGER and "champion moved to v1" in again.reason


def test_load_champion_without_one_names_the_store(mlflow_store: str) -> None:
    with pytest.raises(
        RegistryError, match=f"no absent@champion in the registry at {mlflow_store}"
    ):
        registry.load_champion("absent")
