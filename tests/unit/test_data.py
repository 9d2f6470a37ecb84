"""Loaders on tiny synthetic files: every format, dirty rows, errors, dispatch."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest

from mixllm.core.errors import DataError
from mixllm.core.prices import load_prices
from mixllm.core.tokens import count_tokens, count_tokens_many
from mixllm.data.hub import load_routerbench_hub, parse_hf_path
from mixllm.data.loaders import load_data, load_long, load_messplus, load_routerbench
from mixllm.data.routerbench import last_block, parse_turns

# --------------------------------------------------------------------------- tokens


def test_count_tokens_pieces() -> None:
    assert count_tokens("") == 0
    assert count_tokens(None) == 0  # type: ignore[arg-type]
    assert count_tokens("Hello, world!") == 4  # Hello , world !
    assert count_tokens("it's") == 2  # it 's
    assert count_tokens("12345678") == 3  # 123 456 78
    assert count_tokens("internationalization") == 4  # 10 letters, then 4 + 4 + 2
    assert count_tokens("世界") == 2
    assert count_tokens("Answer:\nB") == 3  # Answer :\n B


def test_count_tokens_many_matches_single() -> None:
    texts = ["a b c", "", "def f(x):\n    return x"]
    many = count_tokens_many(texts)
    assert many.dtype == np.int64
    assert many.tolist() == [count_tokens(t) for t in texts]


# --------------------------------------------------------------------------- parsing


def test_parse_turns_list_literals() -> None:
    assert parse_turns("['a', 'b\\nc']") == ["a", "b\nc"]
    assert parse_turns(["x", "y"]) == ["x", "y"]
    assert parse_turns(np.array(["x"])) == ["x"]
    assert parse_turns("[not a list") == ["[not a list"]
    assert parse_turns("[broken, 'literal']") == ["[broken, 'literal']"]
    assert parse_turns("plain text") == ["plain text"]
    assert parse_turns(float("nan")) == []
    assert parse_turns(None) == []


def test_last_block_drops_few_shot_examples() -> None:
    assert last_block("ex 1\nAnswer: A\n\nex 2\n \nreal question?") == "real question?"
    assert last_block("single block") == "single block"


# --------------------------------------------------------------------------- RouterBench


@pytest.mark.parametrize("name", ["rb.csv", "rb.csv.gz", "rb.pkl", "rb.parquet"])
def test_routerbench_formats(tmp_path, routerbench_df, synth_prices, write_data, name) -> None:
    data = load_routerbench(write_data(routerbench_df, tmp_path / name))
    llms = list(synth_prices)
    assert data.llms == llms
    assert len(data) == 6
    np.testing.assert_allclose(data.quality, routerbench_df[llms].to_numpy(float))
    cost_columns = [f"{m}|total_cost" for m in llms]
    np.testing.assert_allclose(data.cost, routerbench_df[cost_columns].to_numpy(float))
    assert data.queries["sample_id"].tolist() == [f"task.dev.{i}" for i in range(6)]
    assert data.report is not None and data.report.rows_kept == 6


def test_routerbench_directory_sorted_concat(tmp_path, routerbench_df, write_data) -> None:
    write_data(routerbench_df.iloc[3:], tmp_path / "b_part.parquet")
    write_data(routerbench_df.iloc[:3], tmp_path / "a_part.csv")
    (tmp_path / "README.md").write_text("not data")
    data = load_routerbench(tmp_path)
    assert data.queries["sample_id"].tolist() == [f"task.dev.{i}" for i in range(6)]


def test_routerbench_query_prompt_tokens(routerbench_csv) -> None:
    data = load_routerbench(routerbench_csv)
    q = data.queries
    assert list(q.columns) == ["sample_id", "query", "prompt", "source", "prompt_tokens"]
    # Row 0 is few-shot: the query is the real question, the prompt the whole text.
    assert q.loc[0, "query"].startswith("Question 0:")
    assert "Which is a planet" in q.loc[0, "prompt"]
    assert "Which is a planet" not in q.loc[0, "query"]
    assert not q["prompt"].str.startswith("[").any()
    assert q.loc[1, "query"] == q.loc[1, "prompt"]
    assert q["prompt_tokens"].tolist() == [count_tokens(p) for p in q["prompt"]]
    assert set(q["source"]) == {"task-a", "task-b"}


def test_routerbench_output_tokens_from_responses(routerbench_df, tmp_path, write_data) -> None:
    data = load_routerbench(write_data(routerbench_df, tmp_path / "rb.csv"))
    responses = routerbench_df["alpha|model_response"].map(lambda r: parse_turns(r)[0])
    assert data.output_tokens is not None
    assert data.output_tokens[:, 0].tolist() == [count_tokens(r) for r in responses]


def test_routerbench_pickle_with_real_lists_and_multi_turn(tmp_path, routerbench_df) -> None:
    df = routerbench_df.copy()
    df["prompt"] = [["first turn", "examples\n\nsecond question?"]] + [["q"]] * 5
    df.to_pickle(tmp_path / "rb.pkl")
    data = load_routerbench(tmp_path / "rb.pkl")
    assert data.queries.loc[0, "prompt"] == "first turn\n\nexamples\n\nsecond question?"
    assert data.queries.loc[0, "query"] == "second question?"
    # A pickle indexed by sample_id loads the same.
    df.set_index("sample_id").to_pickle(tmp_path / "indexed.pkl")
    indexed = load_routerbench(tmp_path / "indexed.pkl")
    assert indexed.queries["sample_id"].tolist() == data.queries["sample_id"].tolist()


def test_routerbench_missing_quality_skipped_and_counted(
    routerbench_df, tmp_path, write_data, caplog
) -> None:
    df = routerbench_df.copy()
    df.loc[[1, 4], "beta/b-7b"] = np.nan
    with caplog.at_level(logging.WARNING, logger="mixllm.data"):
        data = load_routerbench(write_data(df, tmp_path / "rb.csv"))
    assert len(data) == 4
    assert data.report.skipped_missing_quality == 2
    assert data.report.rows_read == 6
    assert "task.dev.1" not in set(data.queries["sample_id"])
    assert any("2 with missing quality" in r.getMessage() for r in caplog.records)


def test_routerbench_duplicate_ids_first_kept(routerbench_df, tmp_path, write_data) -> None:
    df = routerbench_df.copy()
    df.loc[3, "sample_id"] = "task.dev.0"
    df.loc[5, "sample_id"] = "task.dev.0"
    data = load_routerbench(write_data(df, tmp_path / "rb.csv"))
    report = data.report
    assert report.skipped_duplicate_id == 2
    assert report.rows_kept == 4
    assert data.queries["sample_id"].tolist().count("task.dev.0") == 1
    kept = data.queries.set_index("sample_id").loc["task.dev.0", "query"]
    assert kept.startswith("Question 0:")  # the first occurrence, not row 3 or 5
    assert any("appear more than once" in n for n in report.notes)


def test_duplicate_with_missing_quality_counts_once(routerbench_df, tmp_path, write_data) -> None:
    # As in the real data: a duplicated id whose copies lack quality values.
    df = routerbench_df.copy()
    df.loc[2, "sample_id"] = "task.dev.1"
    df.loc[[1, 2], "alpha"] = np.nan
    report = load_routerbench(write_data(df, tmp_path / "rb.csv")).report
    assert (report.skipped_duplicate_id, report.skipped_missing_quality) == (1, 1)
    assert report.rows_read == report.rows_kept + 2
    assert any("2 rows have a missing quality value; 1 of them" in n for n in report.notes)


def test_complete_duplicate_wins_over_incomplete_first(routerbench_df, tmp_path, write_data):
    df = routerbench_df.copy()
    df.loc[4, "sample_id"] = "task.dev.0"
    df.loc[0, "gamma"] = np.nan
    data = load_routerbench(write_data(df, tmp_path / "rb.csv"))
    assert data.report.skipped_duplicate_id == 1
    assert data.queries.set_index("sample_id").loc["task.dev.0", "query"].startswith("Question 4")


def test_routerbench_missing_columns_named(routerbench_df, tmp_path, write_data) -> None:
    df = routerbench_df.drop(columns=["prompt", "gamma"])
    with pytest.raises(DataError, match=r"missing required RouterBench columns: prompt, gamma"):
        load_routerbench(write_data(df, tmp_path / "rb.csv"))


def test_routerbench_without_llm_columns(routerbench_df, tmp_path, write_data) -> None:
    df = routerbench_df.loc[:, ~routerbench_df.columns.str.endswith("|total_cost")]
    with pytest.raises(DataError, match="no LLM columns"):
        load_routerbench(write_data(df, tmp_path / "rb.csv"))


def test_empty_and_header_only_files(routerbench_df, tmp_path, write_data) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_routerbench(tmp_path / "empty.csv")
    header_only = write_data(routerbench_df.iloc[:0], tmp_path / "header.csv")
    with pytest.raises(DataError, match="no usable rows"):
        load_routerbench(header_only)


def test_unreadable_paths(tmp_path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=re.escape(f"not found: {missing}")):
        load_routerbench(missing)
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(DataError, match="unknown data file extension"):
        load_routerbench(tmp_path / "data.xlsx")
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match=r"cannot read data file .*bad\.parquet"):
        load_routerbench(tmp_path / "bad.parquet")
    empty_dir = tmp_path / "empty_dir"
    empty_dir.mkdir()
    with pytest.raises(DataError, match="no data files"):
        load_routerbench(empty_dir)


# --------------------------------------------------------------------------- long format


@pytest.mark.parametrize("name", ["logs.csv", "logs.jsonl", "logs.parquet", "logs.pkl"])
def test_long_format_pivot(tmp_path, long_df, write_data, name) -> None:
    data = load_long(write_data(long_df, tmp_path / name))
    assert data.llms == ["m1", "m2"]
    assert data.queries["query"].tolist() == ["q one", "q two", "q three"]
    # (q one, m1) was logged twice: averaged. (q three, m2) never: NaN.
    np.testing.assert_allclose(data.quality, [[0.5, 0.0], [0.5, 1.0], [0.0, np.nan]])
    np.testing.assert_allclose(data.cost, [[0.002, 0.002], [0.003, 0.004], [0.005, np.nan]])
    np.testing.assert_allclose(data.latency_s[0], [2.0, 2.0])
    assert data.output_tokens is None
    assert (data.queries["source"] == "custom").all()
    assert data.queries["prompt_tokens"].tolist() == [2, 2, 2]
    assert any("1 repeated (query, llm)" in n for n in data.report.notes)
    # Content-hash ids are stable across loads.
    again = load_long(write_data(long_df, tmp_path / ("again_" + name)))
    assert again.queries["sample_id"].tolist() == data.queries["sample_id"].tolist()


def test_long_format_optional_columns(tmp_path, long_df, write_data) -> None:
    df = long_df.assign(
        sample_id=[7, 7, 8, 8, 9, 7],
        source="chat",
        prompt=["sys\n\nq one"] * 2 + ["q two"] * 2 + ["q three", "sys\n\nq one"],
        output_tokens=[10, 20, 30, 40, 50, 30],
    )
    data = load_long(write_data(df, tmp_path / "logs.csv"))
    assert data.queries["sample_id"].tolist() == ["7", "8", "9"]
    assert data.queries.loc[0, "prompt"] == "sys\n\nq one"
    assert (data.queries["source"] == "chat").all()
    np.testing.assert_allclose(data.output_tokens[0], [20.0, 20.0])


def test_long_format_bad_quality(tmp_path, long_df, write_data) -> None:
    df = long_df.astype({"quality": object})
    df.loc[1, "quality"] = 1.5
    df.loc[3, "quality"] = "good"
    # reported and skipped, as in the wide format (issue #9): never the whole file refused
    data = load_long(write_data(df, tmp_path / "logs.csv"))
    note = " ".join(data.report.notes)
    assert "2 rows skipped" in note and "column 'quality'" in note and "data rows 2, 4" in note
    assert np.isfinite(data.quality[np.isfinite(data.quality)]).all()
    assert np.nanmax(data.quality) <= 1.0


def test_long_format_negative_cost_and_missing_columns(tmp_path, long_df, write_data) -> None:
    bad_cost = long_df.assign(cost=[0.1, -1, 0.1, 0.1, 0.1, 0.1])
    data = load_long(write_data(bad_cost, tmp_path / "c.csv"))
    assert "1 row skipped" in " ".join(data.report.notes)
    assert np.nanmin(data.cost) >= 0
    with pytest.raises(DataError, match="missing required long-format columns: llm, cost"):
        load_long(write_data(long_df.drop(columns=["llm", "cost"]), tmp_path / "m.csv"))


def test_long_format_missing_quality_skipped(tmp_path, long_df, write_data) -> None:
    df = long_df.copy()
    df.loc[4, "quality"] = np.nan
    data = load_long(write_data(df, tmp_path / "logs.csv"))
    assert data.report.skipped_missing_quality == 1
    assert data.queries["query"].tolist() == ["q one", "q two"]


# --------------------------------------------------------------------------- MESS+


def test_messplus_parsing(messplus_csv) -> None:
    data = load_messplus(messplus_csv)
    assert data.llms == ["llama-3.2-1b", "llama-3.1-8b", "llama-3.3-70b"]
    assert data.queries["sample_id"].tolist() == [
        "boolq.0",
        "boolq.1",
        "arc_challenge.0",
        "arc_challenge.1",
    ]
    # boolq rows use acc_*, ARC rows acc_norm_* (their acc_* is empty).
    np.testing.assert_allclose(data.quality[:, 0], [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(data.latency_s[0], [0.1, 0.2, 0.3])
    assert (data.output_tokens == 1).all()
    prices = load_prices()
    tokens = data.queries["prompt_tokens"].to_numpy()
    np.testing.assert_allclose(data.cost[:, 2], tokens * prices["llama-3.3-70b"].input_price)
    assert (data.queries["query"] == data.queries["prompt"]).all()
    assert data.queries["source"].tolist()[2] == "arc_challenge"


def test_messplus_missing_values_skipped(messplus_df, tmp_path, write_data) -> None:
    df = messplus_df.copy()
    df.loc[0, "acc_medium"] = np.nan
    df.loc[3, "inference_time_large"] = np.nan
    data = load_messplus(write_data(df, tmp_path / "m.csv"))
    report = data.report
    assert (report.skipped_missing_quality, report.skipped_other, report.rows_kept) == (1, 1, 2)


def test_messplus_missing_columns(messplus_df, tmp_path, write_data) -> None:
    df = messplus_df.drop(columns=["inference_time_large"])
    with pytest.raises(DataError, match="inference_time_large"):
        load_messplus(write_data(df, tmp_path / "m.csv"))


# --------------------------------------------------------------------------- dispatch


def test_load_data_dispatch(
    tmp_path, long_df, messplus_df, write_data, routerbench_csv, synth_prices
) -> None:
    assert load_data(routerbench_csv).llms == list(synth_prices)
    assert load_data(routerbench_csv.parent).report.rows_kept == 6
    assert load_data(write_data(long_df, tmp_path / "l.jsonl")).llms == ["m1", "m2"]
    assert len(load_data(write_data(messplus_df, tmp_path / "m.parquet")).llms) == 3
    with pytest.raises(DataError, match=r"unknown data format.*query, llm, quality, cost"):
        load_data(write_data(pd.DataFrame({"a": [1], "b": [2]}), tmp_path / "x.csv"))


def test_hf_paths_and_offline_hub(tmp_path) -> None:
    assert parse_hf_path("hf://withmartian/routerbench/routerbench_0shot.pkl") == (
        "withmartian/routerbench",
        "routerbench_0shot.pkl",
    )
    assert parse_hf_path("hf://datasets/org/name/sub/f.csv") == ("org/name", "sub/f.csv")
    assert parse_hf_path("hf://org/name")[1] == "routerbench_0shot.pkl"
    with pytest.raises(DataError, match="bad Hugging Face path"):
        parse_hf_path("hf://only-owner")
    # Cache-only lookup: no network, an empty cache is a clear DataError.
    with pytest.raises(DataError, match="withmartian/routerbench"):
        load_routerbench_hub(cache_dir=tmp_path, local_files_only=True)
