"""Bad input fails the flow early, with a message naming the problem, and writes nothing.

Also the `mixllm pipeline` command on good and bad data.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mixllm.core.errors import ConfigError, DataError, RegistryError
from mixllm.registry import stores as registry
from tests.servers import free_port
from tests.tiny_data import STRONG, tiny_frame

pytestmark = pytest.mark.flow


def store_state() -> dict[str, object]:
    """Registered models with their aliases, and every run of every experiment."""
    c = registry.client()
    models = {m.name: dict(m.aliases) for m in c.search_registered_models()}
    experiments = [e.experiment_id for e in c.search_experiments()]
    runs = sorted(r.info.run_id for r in c.search_runs(experiments)) if experiments else []
    return {"models": models, "runs": runs}


@pytest.fixture
def store(mlflow_store: str, prefect_api: str) -> str:
    """The module's MLflow store; every test checks it is left exactly as it was."""
    before = store_state()
    yield mlflow_store
    assert store_state() == before


def _malformed(folder: Path) -> Path:
    path = folder / "malformed.csv"
    path.write_text("question,answer\nwhat is 2+2,4\n")
    return path


def _empty(folder: Path) -> Path:
    path = folder / "empty.csv"
    tiny_frame(1).iloc[0:0].to_csv(path, index=False)
    return path


def _too_small(folder: Path) -> Path:
    path = folder / "small.csv"
    tiny_frame(2).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (_malformed, DataError, r"malformed\.csv: unknown data format"),
        (_empty, DataError, r"empty\.csv: no usable rows"),
        (_too_small, DataError, r"too few queries to train and evaluate: 6 in all"),
    ],
)
def test_bad_data_fails_naming_the_problem(
    store: str, fast_config: Path, tmp_path: Path, make, error: type, message: str
) -> None:
    from flows.training import train_flow

    with pytest.raises(error, match=message):
        train_flow(data=str(make(tmp_path)), config_path=str(fast_config))


def test_llm_missing_from_the_price_table(
    store: str, tiny_data: Path, fast_config: Path, tmp_path: Path
) -> None:
    from flows.training import train_flow
    from mixllm.core.config import MixLLMConfig
    from mixllm.core.prices import load_prices

    prices = load_prices().to_dict()
    prices["llms"] = {STRONG: prices["llms"][STRONG]}
    (tmp_path / "prices.yaml").write_text(yaml.safe_dump(prices))
    config = MixLLMConfig.from_yaml(fast_config).model_copy(
        update={"prices_path": str(tmp_path / "prices.yaml")}
    )
    config.to_yaml(tmp_path / "config.yaml")
    with pytest.raises(ConfigError, match=r"price table has no entry for: mistralai/mistral-7b"):
        train_flow(data=str(tiny_data), config_path=str(tmp_path / "config.yaml"))


def test_unreachable_tracking_server_fails_before_any_work(
    store: str, tiny_data: Path, fast_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.training import train_flow

    dead = f"http://127.0.0.1:{free_port()}"
    with monkeypatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", dead)
        with pytest.raises(RegistryError, match=f"MLflow tracking server {dead} is unreachable"):
            train_flow(data=str(tiny_data), config_path=str(fast_config))
    registry.configure()  # back to the module's store for the final check


def test_unknown_ablation_is_a_config_error(store: str, tiny_data: Path) -> None:
    from flows.training import train_flow

    with pytest.raises(ConfigError, match="unknown ablation"):
        train_flow(data=str(tiny_data), ablations=["no_brain"])


def _cli():
    import typer
    from typer.testing import CliRunner

    from flows import training_cli

    app = typer.Typer()
    training_cli.register(app)
    return app, CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let `store_defaults` set its variables for one test only."""
    for key in (
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION",
    ):
        monkeypatch.delenv(key, raising=False)


def test_pipeline_command_reports_a_bad_file(
    store: str, cli_env: None, fast_config: Path, tmp_path: Path
) -> None:
    app, runner = _cli()
    result = runner.invoke(
        app, ["pipeline", "--data", str(_malformed(tmp_path)), "--config", str(fast_config)]
    )
    assert result.exit_code == 1
    assert "error:" in result.output and "unknown data format" in result.output


@pytest.mark.slow
def test_pipeline_command_prints_table_version_alias_and_ui(
    mlflow_store: str, prefect_api: str, cli_env: None, tiny_data: Path, fast_config: Path
) -> None:
    # Last in this module: the other tests left the store empty.
    app, runner = _cli()
    result = runner.invoke(
        app,
        ["pipeline", "--data", str(tiny_data), "--config", str(fast_config), "--budget-pct", "20"],
    )
    assert result.exit_code == 0, result.output
    assert "| mixllm |" in result.output
    assert "Registered mixllm-router version 1 as @champion" in result.output
    assert "MLflow UI: http://127.0.0.1:5000/#/models/mixllm-router" in result.output
    params = (
        registry.client()
        .search_runs(
            [registry.client().get_experiment_by_name(registry.EXPERIMENT_NAME).experiment_id]
        )[0]
        .data.params
    )
    assert params["decision.budget_pct"] == "20.0"


@pytest.mark.timeout(240)
def test_deploy_retraining_to_a_missing_pool_is_one_error_line(
    prefect_api: str, cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it printed Prefect's "ValueError: Could not find work pool" traceback
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    result = CliRunner().invoke(app, ["deploy-retraining", "--pool", "nosuchpool"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: --pool: no work pool 'nosuchpool'"), line
