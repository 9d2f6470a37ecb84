"""`pip install mixllm` without the pipeline / service extras can train, route and evaluate:
the library and its CLI run with prefect, mlflow and bentoml impossible to import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _routing import fast_config, price_table
from test_cli import write_routerbench

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

BLOCKER = """
import sys
class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"prefect", "mlflow", "bentoml", "sqlalchemy", "redis"}:
            raise ImportError(f"{name} is an optional extra and is not installed")
sys.meta_path.insert(0, _Blocked())
"""


def test_train_route_evaluate_without_pipeline_or_service_extras(tmp_path: Path) -> None:
    price_table().save(tmp_path / "prices.yaml")
    cfg = fast_config()
    cfg.prices_path = str(tmp_path / "prices.yaml")
    cfg.to_yaml(tmp_path / "config.yaml")
    data = write_routerbench(tmp_path / "bench.csv")
    script = BLOCKER + textwrap.dedent(
        f"""
        from typer.testing import CliRunner
        from flows.cli import app
        run = CliRunner().invoke
        out = {str(tmp_path / "router")!r}
        config = {str(tmp_path / "config.yaml")!r}
        for args in (
            ["train", "--data", {str(data)!r}, "--out", out, "--config", config],
            ["route", "Write a Python function to sort a list.", "--router", out],
            ["evaluate", "--router", out, "--data", {str(data)!r}, "--json"],
        ):
            result = run(app, args)
            assert result.exit_code == 0, (args[0], result.output, repr(result.exception))
        for name in ("prefect", "mlflow", "bentoml", "sqlalchemy", "redis"):
            assert name not in sys.modules, name
        print("ok")
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent,
        timeout=230,
    )
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout + res.stderr
