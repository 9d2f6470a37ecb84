"""Loaders and derived prices on the real shared data (../shared/data or $MIXLLM_DATA)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from mixllm.core.paths import default_data_path
from mixllm.core.prices import derive_prices, load_prices, price_report
from mixllm.core.types import RoutingData
from mixllm.data.loaders import load_data, load_messplus
from mixllm.data.routerbench import routerbench_llms
from mixllm.data.tables import read_path

pytestmark = pytest.mark.data

ROUTERBENCH_LLMS = {
    "gpt-4-1106-preview",
    "gpt-3.5-turbo-1106",
    "claude-v1",
    "claude-v2",
    "claude-instant-v1",
    "meta/llama-2-70b-chat",
    "mistralai/mixtral-8x7b-chat",
    "zero-one-ai/Yi-34B-Chat",
    "WizardLM/WizardLM-13B-V1.2",
    "meta/code-llama-instruct-34b-chat",
    "mistralai/mistral-7b-chat",
}
# Documented in mixllm/resources/prices.yaml: mean relative error 0.7-1.0% per LLM.
MAX_MEAN_REL_ERROR = 0.012


def _shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set MIXLLM_DATA or provide ../shared/data)")
    return path


@pytest.fixture(scope="module")
def routerbench_dir() -> Path:
    return _shared(default_data_path())


@pytest.fixture(scope="module")
def messplus_file(routerbench_dir: Path) -> Path:
    return _shared(routerbench_dir.parent / "messplus" / "messplus_all.csv")


@pytest.fixture(scope="module")
def routerbench(routerbench_dir: Path) -> tuple[RoutingData, float]:
    start = time.perf_counter()
    data = load_data(routerbench_dir)
    return data, time.perf_counter() - start


def test_routerbench_rows_and_dirty_rows_as_found(routerbench, routerbench_dir) -> None:
    data, seconds = routerbench
    raw = read_path(routerbench_dir)
    llms = routerbench_llms(raw.columns)
    n_missing = int(raw[llms].isna().any(axis=1).sum())
    n_duplicates = int(raw["sample_id"].duplicated().sum())
    assert (len(raw), n_missing, n_duplicates) == (2225, 20, 7)

    report = data.report
    assert report.rows_read == 2225
    assert report.skipped_duplicate_id == 7
    # The 7 extra copies all lack quality values: counted once, as duplicates.
    assert report.skipped_missing_quality == 20 - 7
    assert report.rows_kept == len(data) == 2225 - 20
    assert any(
        n.startswith("20 rows have a missing quality value; 7 of them") for n in report.notes
    )
    assert data.queries["sample_id"].is_unique
    assert seconds < 15, f"loading took {seconds:.1f} s"


def test_routerbench_llms_and_matrices(routerbench) -> None:
    data, _ = routerbench
    assert set(data.llms) == ROUTERBENCH_LLMS
    assert np.isfinite(data.quality).all() and np.isfinite(data.cost).all()
    assert set(np.unique(data.quality)) <= {0.0, 1.0}
    assert (data.cost > 0).all()
    assert set(data.queries["source"]) == {"arc-challenge", "winogrande", "mbpp"}
    gpt4 = data.llm_index("gpt-4-1106-preview")
    assert data.quality[:, gpt4].mean() == pytest.approx(0.88, abs=0.02)


def test_routerbench_queries_without_few_shot_blocks(routerbench) -> None:
    q = routerbench[0].queries
    assert not q["query"].str.contains("\n\n").any()
    assert not q["prompt"].str.startswith("['").any()
    arc = q[q["source"] == "arc-challenge"]
    # Few-shot prompts hold several "Answer:" blocks; the query only its own.
    assert (arc["prompt"].str.count("Answer:") > 1).all()
    assert (arc["query"].str.count("Answer:") == 1).all()
    assert (q["prompt_tokens"] > 0).all()
    assert q["prompt_tokens"].groupby(q["source"]).mean()["arc-challenge"] > 300


def test_derived_prices_reproduce_recorded_cost(routerbench) -> None:
    data, _ = routerbench
    table = load_prices()
    report = price_report(data, prices=table)
    assert set(report["llm"]) == ROUTERBENCH_LLMS
    assert (report["mean_rel_error"] < MAX_MEAN_REL_ERROR).all(), report
    np.testing.assert_allclose(report["mean_predicted_cost"], report["mean_cost"], rtol=0.02)
    for llm, (inp, out, rel_error) in derive_prices(data).items():
        assert inp == pytest.approx(table[llm].input_price, rel=0.01)
        assert out == pytest.approx(table[llm].output_price, rel=0.01)
        assert rel_error < MAX_MEAN_REL_ERROR


def test_messplus_loads_with_latency(messplus_file) -> None:
    data = load_messplus(messplus_file)
    assert data.llms == ["llama-3.2-1b", "llama-3.1-8b", "llama-3.3-70b"]
    assert data.report.rows_read == 13252 and len(data) == 13252
    assert (data.latency_s > 0).all()
    assert set(np.unique(data.quality)) <= {0.0, 1.0}
    mean_latency = data.latency_s.mean(axis=0)
    assert mean_latency[0] < mean_latency[1] < mean_latency[2]
    # The price table's speeds were set to reproduce these means (see prices.yaml).
    table = load_prices()
    for j, llm in enumerate(data.llms):
        spec = table[llm]
        assert spec.ttft_s + 1 / spec.tokens_per_s == pytest.approx(mean_latency[j], rel=0.01)
    assert load_data(messplus_file).llms == data.llms
