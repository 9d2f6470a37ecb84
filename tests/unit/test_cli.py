"""The `mixllm` library commands end to end on a tiny RouterBench-format file."""

import json

import pandas as pd
import pytest
from _routing import LLMS, fast_config, make_task, price_table
from typer.testing import CliRunner

from mixllm.tools.cli import app

runner = CliRunner()


def write_routerbench(path, n=240, llms=LLMS):
    """The synthetic task in RouterBench's wide format (columns of ``llms`` only)."""
    data = make_task(n)
    frame = pd.DataFrame(
        {
            "sample_id": data.queries["sample_id"],
            "eval_name": data.queries["source"],
            "prompt": [repr([q]) for q in data.queries["query"]],
        }
    )
    for j, llm in enumerate(LLMS):
        if llm not in llms:
            continue
        frame[llm] = data.quality[:, j]
        frame[f"{llm}|model_response"] = [
            repr(["word " * int(t)]) for t in data.output_tokens[:, j]
        ]
        frame[f"{llm}|total_cost"] = data.cost[:, j]
    frame["oracle_model_to_route_to"] = LLMS[0]
    frame.to_csv(path)
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    price_table().save(root / "prices.yaml")
    cfg = fast_config()
    cfg.prices_path = str(root / "prices.yaml")
    cfg.to_yaml(root / "config.yaml")
    write_routerbench(root / "bench.csv")
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(root / "bench.csv"),
            "--out",
            str(root / "router"),
            "--config",
            str(root / "config.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    return root


def test_train_reports_the_split(workspace):
    assert (workspace / "router" / "training.json").exists()
    assert (workspace / "router" / "meta.json").exists()


def test_evaluate_json_has_the_documented_shape(workspace):
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--router",
            str(workspace / "router"),
            "--data",
            str(workspace / "bench.csv"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["reference_llm"] == "premium"
    assert report["n_queries"] == 72  # the 30 % held out at training
    for name in ["mixllm", "oracle", "knn", "mlp", "svm", "mf", "tag_mean", "random", *LLMS]:
        r = report["routers"][name]
        assert set(r) >= {"aiq", "quality_pct_at_cost_pct", "mean_quality", "mean_cost"}
        assert set(r["quality_pct_at_cost_pct"]) == {"10", "25", "50"}


def _evaluate_json(workspace, data, *extra):
    args = ["evaluate", "--router", str(workspace / "router"), "--data", str(data), "--json"]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def test_evaluate_on_a_log_of_fewer_llms(workspace):
    # issue #8 defect 7: "routed to LLMs absent from the test data"
    two = write_routerbench(workspace / "two.csv", llms=["cheap-coder", "premium"])
    report, err = _evaluate_json(workspace, two)
    assert "not in the data: cheap-reader" in err
    assert any("cheap-reader" in n for n in report["notes"])
    assert "cheap-reader" not in report["routers"]
    assert {"mixllm", "knn", "cheap-coder", "premium"} <= set(report["routers"])


def test_evaluate_limited_to_candidates(workspace):
    report, _ = _evaluate_json(
        workspace, workspace / "bench.csv", "--candidates", "cheap-reader,premium"
    )
    assert set(report["routers"]) >= {"mixllm", "cheap-reader", "premium"}
    assert "cheap-coder" not in report["routers"]
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--router",
            str(workspace / "router"),
            "--data",
            str(workspace / "bench.csv"),
            "--candidates",
            "ghost",
        ],
    )
    assert result.exit_code != 0 and "ghost" in result.output


def test_route_prints_choice_tags_and_candidates(workspace):
    result = runner.invoke(
        app,
        [
            "route",
            "Write a Python function to sort a list of numbers.",
            "--router",
            str(workspace / "router"),
            "--budget-pct",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "chosen: cheap-coder" in result.stdout
    assert "task:code_generation" in result.stdout
    for llm in LLMS:
        assert llm in result.stdout


def test_route_json_and_bad_candidate(workspace):
    ok = runner.invoke(app, ["route", "hi there", "--router", str(workspace / "router"), "--json"])
    assert json.loads(ok.stdout)["llm"] in LLMS
    bad = runner.invoke(
        app, ["route", "hi", "--router", str(workspace / "router"), "--candidates", "ghost"]
    )
    assert bad.exit_code == 2 and "ghost" in bad.output


def test_missing_data_file_is_a_clear_error(tmp_path):
    result = runner.invoke(
        app, ["train", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "nope.csv" in result.output
    assert "Traceback" not in result.output


@pytest.mark.timeout(120)
def test_train_on_all_rows_holds_nothing_out(workspace, tmp_path):
    out = tmp_path / "prod"
    args = ["train", "--data", str(workspace / "bench.csv"), "--out", str(out)]
    result = runner.invoke(app, [*args, "--config", str(workspace / "config.yaml"), "--all-rows"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "training.json").read_text())
    assert record["test_ids"] == [] and len(record["train_ids"]) == 240
    assert (out / "calibration_rows.npz").exists()  # the internal calibration split
    # nothing left to evaluate on: evaluate says so instead of scoring training rows
    result = runner.invoke(
        app, ["evaluate", "--router", str(out), "--data", str(workspace / "bench.csv")]
    )
    assert result.exit_code != 0
