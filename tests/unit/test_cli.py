"""The `mixllm` library commands end to end on a tiny RouterBench-format file."""

import json

import pandas as pd
import pytest
from _routing import LLMS, fast_config, make_task, price_table
from typer.testing import CliRunner

from mixllm.tools.cli import app

runner = CliRunner()


def write_routerbench(path, n=240):
    """The synthetic task in RouterBench's wide format."""
    data = make_task(n)
    frame = pd.DataFrame(
        {
            "sample_id": data.queries["sample_id"],
            "eval_name": data.queries["source"],
            "prompt": [repr([q]) for q in data.queries["query"]],
        }
    )
    for j, llm in enumerate(LLMS):
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
