"""Issue #9, data files: a quality outside [0, 1] is reported and its row skipped; an LLM
with no usable value at all is named in a DataError instead of every row being dropped."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from mixllm.core.errors import DataError
from mixllm.data.loaders import load_routerbench

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("bad", [1.5, -0.2, np.inf])
def test_quality_outside_unit_interval_is_reported_and_skipped(
    routerbench_df, tmp_path, write_data, caplog, bad
) -> None:
    df = routerbench_df.copy()
    df.loc[2, "beta/b-7b"] = bad
    with caplog.at_level(logging.WARNING, logger="mixllm.data"):
        data = load_routerbench(write_data(df, tmp_path / "rb.csv"))
    assert len(data) == 5 and data.report.skipped_other == 1
    assert float(np.nanmax(data.quality)) <= 1.0 and float(np.nanmin(data.quality)) >= 0.0
    assert any("outside [0, 1]" in n and "beta/b-7b (1)" in n for n in data.report.notes)
    assert "outside [0, 1]" in caplog.text


def test_negative_cost_is_skipped_too(routerbench_df, tmp_path, write_data) -> None:
    df = routerbench_df.copy()
    df.loc[0, "beta/b-7b|total_cost"] = -1.0
    data = load_routerbench(write_data(df, tmp_path / "rb.csv"))
    assert len(data) == 5 and (data.cost >= 0).all()


@pytest.mark.parametrize("value", [np.nan, 7.0, "n/a"])
def test_an_llm_without_any_usable_value_is_named(
    routerbench_df, tmp_path, write_data, value
) -> None:
    df = routerbench_df.copy()
    df["beta/b-7b"] = value
    with pytest.raises(DataError, match=r"LLM\(s\) beta/b-7b"):
        load_routerbench(write_data(df, tmp_path / "rb.csv"))
