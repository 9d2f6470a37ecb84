"""Tiny synthetic fixtures: small RoutingData objects and small data files in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixllm.core.types import RoutingData

# Known $/token prices of the synthetic RouterBench table: (input, output).
SYNTH_PRICES = {"alpha": (1e-6, 3e-6), "beta/b-7b": (2e-7, 2e-7), "gamma": (5e-6, 1.5e-5)}

FEW_SHOT = (
    "Which is a planet?\nA) Moon\nB) Mars\nAnswer:\nB\n\n"
    "Which is a metal?\nA) Iron\nB) Wood\nAnswer:\nA\n\n"
)


def build_routing_data(
    n: int = 8,
    llms: Sequence[str] = ("a", "b", "c"),
    seed: int = 0,
    sparse: bool = False,
) -> RoutingData:
    """A small RoutingData with random 0/1 quality, positive costs and two sources."""
    rng = np.random.default_rng(seed)
    k = len(llms)
    queries = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "query": [f"question number {i}?" for i in range(n)],
            "prompt": [f"Answer briefly.\n\nquestion number {i}?" for i in range(n)],
            "source": ["task-x" if i % 2 else "task-y" for i in range(n)],
            "prompt_tokens": rng.integers(5, 50, n),
        }
    )
    quality = rng.integers(0, 2, (n, k)).astype(float)
    output_tokens = rng.integers(1, 100, (n, k)).astype(float)
    price = np.linspace(1e-7, 1e-5, k)
    cost = (queries["prompt_tokens"].to_numpy()[:, None] + output_tokens) * price
    if sparse:
        hide = rng.random((n, k)) < 0.3
        for arr in (quality, cost, output_tokens):
            arr[hide] = np.nan
    return RoutingData(queries, list(llms), quality, cost, output_tokens=output_tokens)


def routerbench_frame(n: int = 6, prices: dict[str, tuple[float, float]] | None = None):
    """A RouterBench wide-format DataFrame whose total_cost = list price x our token counts."""
    from mixllm.core.tokens import count_tokens

    prices = prices or SYNTH_PRICES
    rows = []
    for i in range(n):
        question = f"Question {i}: what is {i} plus {i}? Explain your reasoning in detail."
        # Even rows are few-shot (examples, blank line, question), odd rows zero-shot.
        text = FEW_SHOT + question if i % 2 == 0 else question
        row: dict[str, object] = {
            "Unnamed: 0": i,
            "sample_id": f"task.dev.{i}",
            "prompt": repr([text]),
            "eval_name": "task-a" if i % 2 == 0 else "task-b",
        }
        for j, llm in enumerate(prices):
            answer = "word " * (1 + 7 * ((i + j) % 4)) + f"= {2 * i}"
            row[llm] = float((i + j) % 2)
            row[f"{llm}|model_response"] = repr([answer])
            inp, out = prices[llm]
            row[f"{llm}|total_cost"] = inp * count_tokens(text) + out * count_tokens(answer)
        row["oracle_model_to_route_to"] = next(iter(prices))
        rows.append(row)
    return pd.DataFrame(rows)


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` in the format named by the file's suffix."""
    name = path.name
    if name.endswith((".csv", ".csv.gz")):
        df.to_csv(path, index=False)
    elif name.endswith(".parquet"):
        df.to_parquet(path, index=False)
    elif name.endswith(".pkl"):
        df.to_pickle(path)
    elif name.endswith(".jsonl"):
        df.to_json(path, orient="records", lines=True)
    else:
        raise ValueError(f"no writer for {name}")
    return path


def long_frame() -> pd.DataFrame:
    """Long-format logs: 3 queries, 2 LLMs, one pair unobserved, one pair repeated."""
    return pd.DataFrame(
        {
            "query": ["q one", "q one", "q two", "q two", "q three", "q one"],
            "llm": ["m1", "m2", "m1", "m2", "m1", "m1"],
            "quality": [1.0, 0.0, 0.5, 1.0, 0.0, 0.0],
            "cost": [0.001, 0.002, 0.003, 0.004, 0.005, 0.003],
            "latency_s": [1.0, 2.0, 1.5, 2.5, 1.2, 3.0],
        }
    )


def messplus_frame() -> pd.DataFrame:
    """A 4-row MESS+ table with the real column names (ARC rows use acc_norm_*)."""
    sizes = ("small", "medium", "large")
    df = pd.DataFrame(
        {
            "doc_id": [0, 1, 0, 1],
            "input_text": ["Is water wet?", "Is fire cold?", "Pick the metal.", "Pick a gas."],
            "benchmark_name": ["boolq", "boolq", "arc_challenge", "arc_challenge"],
        }
    )
    for j, size in enumerate(sizes):
        df[f"label_{size}"] = 1.0
        df[f"acc_{size}"] = [1.0, 0.0, np.nan, np.nan]
        df[f"energy_consumption_{size}"] = 10.0 * (j + 1)
        df[f"inference_time_{size}"] = [0.1 * (j + 1), 0.2 * (j + 1), 0.3 * (j + 1), 0.4]
    for size in sizes:
        df[f"acc_norm_{size}"] = [np.nan, np.nan, 1.0, 0.0]
    return df


@pytest.fixture
def make_routing_data() -> Callable[..., RoutingData]:
    """Builder of small RoutingData objects: ``make_routing_data(n=8, llms=..., sparse=...)``."""
    return build_routing_data


@pytest.fixture
def tiny_data() -> RoutingData:
    """8 queries x 3 LLMs, fully observed."""
    return build_routing_data()


@pytest.fixture
def routerbench_csv(tmp_path: Path) -> Path:
    """A 6-row RouterBench wide CSV (3 LLMs, list-literal prompts, few-shot rows)."""
    return write_table(routerbench_frame(), tmp_path / "rb.csv")


@pytest.fixture
def long_csv(tmp_path: Path) -> Path:
    """A small long-format CSV (see ``long_frame``)."""
    return write_table(long_frame(), tmp_path / "logs.csv")


@pytest.fixture
def messplus_csv(tmp_path: Path) -> Path:
    """A 4-row MESS+ CSV with the real column names."""
    return write_table(messplus_frame(), tmp_path / "messplus.csv")


@pytest.fixture
def synth_prices() -> dict[str, tuple[float, float]]:
    """The known (input, output) $/token prices behind ``routerbench_df``'s total_cost."""
    return dict(SYNTH_PRICES)


@pytest.fixture
def routerbench_df() -> pd.DataFrame:
    """A 6-row RouterBench wide DataFrame (see ``routerbench_frame``)."""
    return routerbench_frame()


@pytest.fixture
def long_df() -> pd.DataFrame:
    """Long-format logs (see ``long_frame``)."""
    return long_frame()


@pytest.fixture
def messplus_df() -> pd.DataFrame:
    """A 4-row MESS+ DataFrame (see ``messplus_frame``)."""
    return messplus_frame()


@pytest.fixture
def write_data() -> Callable[[pd.DataFrame, Path], Path]:
    """``write_data(df, path)`` writes csv/csv.gz/parquet/pkl/jsonl by suffix."""
    return write_table
