"""The MESS+ latency file: three Llama models (small / medium / large) with lm-eval accuracy
and measured per-query inference time; cost comes from a price table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mixllm.core.prices import PriceTable, load_prices
from mixllm.core.types import LoadReport, RoutingData
from mixllm.data.accounting import account_rows, finish
from mixllm.data.frames import flat, numeric, query_frame, require_columns, text_ids
from mixllm.data.tables import read_table

MESSPLUS_COLUMNS = ("input_text", "benchmark_name")
# MESS+ column suffix -> the LLM it measured (small / medium / large Llama).
MESSPLUS_LLMS = {"small": "llama-3.2-1b", "medium": "llama-3.1-8b", "large": "llama-3.3-70b"}


def messplus_from_frame(
    df: pd.DataFrame, source: str = "messplus", prices: PriceTable | None = None
) -> RoutingData:
    """Build RoutingData from the MESS+ DataFrame (see ``load_messplus``)."""
    df = flat(df)
    sizes = list(MESSPLUS_LLMS)
    needed = [*MESSPLUS_COLUMNS, *(f"{p}_{s}" for p in ("acc", "inference_time") for s in sizes)]
    require_columns(needed, df.columns, source, "MESS+")
    llms = list(MESSPLUS_LLMS.values())
    prices = prices if prices is not None else load_prices()
    prices.validate_llms(llms)
    report = LoadReport(source=source, rows_read=len(df))

    quality = _quality(df, sizes)
    latency = numeric(df, [f"inference_time_{s}" for s in sizes])
    ids = df["benchmark_name"].astype(str) + "." + _messplus_doc_ids(df)
    has_quality = ~np.isnan(quality).any(axis=1)
    valid_other = ~np.isnan(latency).any(axis=1) & df["input_text"].notna().to_numpy()
    _, keep = account_rows(report, ids, has_quality, valid_other)

    kept = df.loc[keep]
    texts = kept["input_text"].astype(str).tolist()
    queries = query_frame(ids[keep].tolist(), texts, texts, kept["benchmark_name"].astype(str))
    tokens = queries["prompt_tokens"].to_numpy(dtype=float)[:, None]
    input_price = np.array([prices[m].input_price for m in llms])
    return finish(
        RoutingData(
            queries=queries,
            llms=llms,
            quality=quality[keep],
            cost=tokens * input_price,
            output_tokens=np.ones((len(kept), len(llms))),
            latency_s=latency[keep],
            report=report,
        )
    )


def _quality(df: pd.DataFrame, sizes: list[str]) -> np.ndarray:
    """(n, 3) accuracy: ``acc_norm_*`` on ARC rows, ``acc_*`` elsewhere."""
    # lm-eval scores ARC with length-normalised accuracy; its acc_* cells are empty.
    is_arc = df["benchmark_name"].astype(str).str.startswith("arc").to_numpy()[:, None]
    acc = numeric(df, [f"acc_{s}" for s in sizes])
    norm_columns = [f"acc_norm_{s}" for s in sizes]
    norm = numeric(df, norm_columns) if set(norm_columns) <= set(df.columns) else acc * np.nan
    return np.where(is_arc, norm, acc)


def _messplus_doc_ids(df: pd.DataFrame) -> pd.Series:
    """``doc_id`` as text; the row position stands in where it is absent."""
    position = pd.Series([f"row{i}" for i in range(len(df))], index=df.index)
    if "doc_id" not in df.columns:
        return position
    return text_ids(df["doc_id"]).fillna(position)


def load_messplus(path: str | Path, prices: PriceTable | None = None) -> RoutingData:
    """Load the MESS+ file: three Llama models with measured per-query latency.

    LLMs: llama-3.2-1b / llama-3.1-8b / llama-3.3-70b (the file's small / medium / large).
    Quality is ``acc_norm_*`` on ARC rows (``acc_*`` is empty there), else ``acc_*``;
    ``latency_s`` is ``inference_time_*``; query = prompt = ``input_text``. These are
    lm-eval log-likelihood evaluations, which generate no text: ``output_tokens`` is 1
    and cost is prompt_tokens x the model's input price from ``prices`` (default: the
    packaged table). Rows with a missing value are skipped and counted.
    """
    return messplus_from_frame(read_table(path), source=str(path), prices=prices)
