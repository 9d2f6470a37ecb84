"""`mixllm benchmark-encoders`' comparison: one router per max token length, scored under each
backend against the reference (the first backend at the first length), on the tiny task."""

from __future__ import annotations

import pytest

from mixllm.core.config import MixLLMConfig
from mixllm.tools.encoder_backends import compare_backends, render_section
from tests.tiny_data import FAST_CONFIG, write_tiny

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_each_backend_at_each_length_against_the_reference(tmp_path) -> None:
    data = write_tiny(tmp_path / "tiny.csv")
    cfg = MixLLMConfig.model_validate(
        {**FAST_CONFIG, "encoder": {**FAST_CONFIG["encoder"], "cache_dir": str(tmp_path)}}
    )
    results = compare_backends(
        str(data), cfg, backends=("torch", "onnx"), lengths=(64, 32), timing_queries=5
    )
    rows = results["backends"]
    assert results["reference"] == "torch @ 64"
    assert list(rows) == ["torch @ 64", "onnx @ 64", "torch @ 32", "onnx @ 32"]
    ref = rows["torch @ 64"]
    assert ref["quality_diff_ci95"] == [0.0, 0.0] and ref["agreement"] == 1.0
    # fp32 ONNX embeds as torch does (within float error): same choices at the same length
    assert rows["onnx @ 64"]["agreement"] == 1.0 and rows["onnx @ 64"]["equal_within_noise"]
    assert rows["onnx @ 32"]["agreement"] == pytest.approx(rows["torch @ 32"]["agreement"])
    for row in rows.values():
        assert row["embed_p50_ms"] > 0 and row["embed_cpu_ms"] > 0
    text = render_section(results, "mixllm benchmark-encoders")
    assert "quality - torch @ 64 (95 % CI)" in text
    assert "| onnx @ 32 |" in text and "CPU ms/query" in text
