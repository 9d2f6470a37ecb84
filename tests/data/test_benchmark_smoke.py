"""`mixllm benchmark` end to end on a small sample (the committed numbers use all the data)."""

from __future__ import annotations

import json

import pytest

from mixllm.core.config import MixLLMConfig
from mixllm.core.paths import default_data_path
from mixllm.tools.benchmark import run_benchmark

pytestmark = [pytest.mark.data, pytest.mark.slow]


def test_benchmark_writes_every_section(tmp_path):
    data = default_data_path()
    if not data.exists():
        pytest.skip(f"real data not found at {data}")
    cfg = MixLLMConfig.model_validate(
        {
            "encoder": {"kind": "hash", "finetune": False},
            "predictor": {"n_estimators": 30, "n_bags": 2},
        }
    )
    # the quality section runs end to end in tests/unit/test_bench_quality.py
    out = run_benchmark(str(data), tmp_path / "BENCHMARKS.md", config=cfg, limit=240, quality=False)
    text = out.read_text()
    for section in (
        "## Headline",
        "## Ablations",
        "## Cost prediction",
        "## Routing under a time constraint",
        "## Speed",
    ):
        assert section in text
    assert (tmp_path / "pareto.png").stat().st_size > 10_000
    js = json.loads((tmp_path / "BENCHMARKS.json").read_text())
    assert {"mixllm", "oracle", "mixllm-no-tags"} <= set(js["evaluation"]["routers"])
    assert js["speed"]["decision_p50_ms"] > 0
