"""``load_data``: one entry point for every supported source (hf:// path, RouterBench file or
directory, long-format logs, MESS+), dispatched on the path and the table's columns.

The formats live in their own modules (``routerbench``, ``long_format``, ``messplus``,
``hub``); their ``load_*`` functions are re-exported here so callers need one import. Every
loader fills a ``LoadReport`` (``accounting``): skipped rows are counted, never silently lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mixllm.core.errors import DataError
from mixllm.core.prices import PriceTable
from mixllm.core.types import RoutingData
from mixllm.data.frames import listed
from mixllm.data.hub import load_routerbench_hub, parse_hf_path
from mixllm.data.long_format import LONG_COLUMNS, load_long, long_from_frame
from mixllm.data.messplus import MESSPLUS_COLUMNS, load_messplus, messplus_from_frame
from mixllm.data.routerbench import (
    COST_SUFFIX,
    ROUTERBENCH_COLUMNS,
    load_routerbench,
    routerbench_from_frame,
    routerbench_llms,
)
from mixllm.data.tables import read_table

__all__ = [
    "detect_format",
    "load_data",
    "load_long",
    "load_messplus",
    "load_routerbench",
    "load_routerbench_hub",
]


def detect_format(columns: Sequence[object]) -> str | None:
    """'routerbench', 'long' or 'messplus' from a table's column names; None if unknown."""
    present = {str(c) for c in columns}
    if routerbench_llms(list(columns)):
        return "routerbench"
    if set(LONG_COLUMNS) <= present:
        return "long"
    if set(MESSPLUS_COLUMNS) <= present:
        return "messplus"
    return None


def load_data(path: str | Path, prices: PriceTable | None = None) -> RoutingData:
    """Load any supported source: hf:// path, RouterBench file/directory, long logs or MESS+."""
    text = str(path)
    if text.startswith("hf://"):
        repo_id, filename = parse_hf_path(text)
        return load_routerbench_hub(repo_id, filename)
    path = Path(path)
    if path.is_dir():
        return load_routerbench(path)
    df = read_table(path)
    kind = detect_format(df.columns)
    if kind == "routerbench":
        return routerbench_from_frame(df, source=text)
    if kind == "long":
        return long_from_frame(df, source=text)
    if kind == "messplus":
        return messplus_from_frame(df, source=text, prices=prices)
    raise DataError(
        f"{text}: unknown data format. Expected RouterBench wide columns "
        f"({', '.join(ROUTERBENCH_COLUMNS)}, <llm>, <llm>{COST_SUFFIX}), long columns "
        f"({', '.join(LONG_COLUMNS)}) or MESS+ columns ({', '.join(MESSPLUS_COLUMNS)}, "
        f"acc_*, inference_time_*); found: {listed(list(df.columns))}"
    )
