"""The flow's pure helpers: feedback rows, merging, config building, what is worth a retry."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import sqlalchemy.exc

from mixllm.core.errors import ConfigError, DataError
from mixllm.data.long_format import long_from_frame
from mixllm.data.routerbench import routerbench_from_frame
from tests.tiny_data import LLMS, STRONG, tiny_frame

pytestmark = pytest.mark.flow


@pytest.fixture(scope="module")
def base():
    return routerbench_from_frame(tiny_frame(5), source="tiny")


def test_feedback_becomes_long_rows_with_costs(base) -> None:
    from flows.training_tasks import feedback_rows

    feedback = pd.DataFrame(
        {
            "query": ["q1", "q2", "q3"],
            "llm": [STRONG, LLMS[1], LLMS[2]],
            "quality": [1.0, np.nan, 0.0],
            "cost": [0.002, 0.001, np.nan],
            "latency_s": [0.5, 0.7, np.nan],
            "created_at": pd.to_datetime(["2026-01-01"] * 3, utc=True),
            "router_version": ["1"] * 3,
        }
    )
    rows = feedback_rows(feedback, base)
    assert rows["query"].tolist() == ["q1", "q3"]  # no quality: nothing to learn from
    assert rows.loc[0, "cost"] == 0.002
    # A missing cost is that LLM's mean recorded cost in the base data.
    assert math.isclose(rows.loc[1, "cost"], float(np.nanmean(base.cost[:, 2])))
    assert set(rows["source"]) == {"feedback"}


def test_merge_keeps_base_rows_and_adds_feedback_llms(base) -> None:
    extra = long_from_frame(
        pd.DataFrame(
            {
                "query": ["new question", "new question"],
                "llm": [STRONG, "brand-new-llm"],
                "quality": [1.0, 0.5],
                "cost": [0.01, 0.001],
                "latency_s": [1.0, 2.0],
                "source": ["feedback", "feedback"],
            }
        ),
        source="feedback",
    )
    merged = base.concat(extra)
    assert merged.llms == [*base.llms, "brand-new-llm"]
    assert len(merged) == len(base) + 1
    np.testing.assert_array_equal(merged.quality[: len(base), : len(base.llms)], base.quality)
    assert np.isnan(merged.quality[: len(base), -1]).all()  # never observed on base queries
    assert merged.quality[-1, 0] == 1.0 and merged.quality[-1, -1] == 0.5
    assert merged.latency_s is not None and np.isnan(merged.latency_s[0]).all()
    assert merged.queries["source"].iloc[-1] == "feedback"


def test_unknown_ablation_names_the_known_ones() -> None:
    from flows.training import build_config

    with pytest.raises(ConfigError, match="known: no-tags, no-finetune, no-uncertainty"):
        build_config(None, None, None, ["no-brain"])
    config = build_config(None, 12.5, 3, ["no-uncertainty"])
    assert config.decision.budget_pct == 12.5 and config.train.seed == 3
    assert config.bandit.alpha == 0.0


def _caused_by(cause: BaseException) -> Exception:
    try:
        raise DataError("cannot read the data") from cause
    except DataError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (_caused_by(ConnectionResetError("reset by peer")), True),
        (_caused_by(TimeoutError("timed out")), True),
        (sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("database is locked")), True),
        (_caused_by(FileNotFoundError("no such file")), False),
        (DataError("no usable rows"), False),
        (ConfigError("price table has no entry for: x"), False),
    ],
)
def test_only_io_failures_are_retried(exc: Exception, retry: bool) -> None:
    from flows.training_tasks import _transient

    assert _transient(exc) is retry


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--feedback-url", "postgresql://u:s3cretPW@db/x"], "--feedback-url: the URL holds a"),
        (["--cron", "not a cron"], "--cron: 'not a cron' is not a cron expression"),
        (["--source", "/nonexistent"], "--source: /nonexistent is not a directory"),
        (["--dask-address", "bogus"], "--dask-address: 'bogus' is not a Dask scheduler"),
        (["--data", "/nonexistent/data"], "--data: /nonexistent/data does not exist"),
        (["--config", "/nonexistent.yaml"], "--config: /nonexistent.yaml does not exist"),
    ],
)
def test_deploy_retraining_refuses_bad_options_in_one_line(args, message, monkeypatch) -> None:
    # they printed tracebacks, were accepted unchecked, or (a password) stored in clear
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # never reached
    result = CliRunner().invoke(app, ["deploy-retraining", "--pool", "p", *args])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {message}"), line
    assert "s3cretPW" not in result.stderr


@pytest.mark.timeout(30)
def test_dask_settings_are_checked_before_the_flow() -> None:
    from flows.task_runners import check_dask_env

    with pytest.raises(ConfigError, match="not a number of workers"):
        check_dask_env({"MIXLLM_DASK_WORKERS": "abc"})
    with pytest.raises(ConfigError, match="not a Dask scheduler address"):
        check_dask_env({"MIXLLM_DASK_ADDRESS": "127.0.0.1"})
    with pytest.raises(
        ConfigError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:1"
    ):
        check_dask_env({"MIXLLM_DASK_ADDRESS": "tcp://127.0.0.1:1"})
    check_dask_env({"MIXLLM_DASK_WORKERS": "2"})
