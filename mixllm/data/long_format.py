"""Long-format logs of one's own traffic: one row per (query, llm) observation, pivoted into
one row per query and one column per LLM (pairs never observed are NaN)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from mixllm.core.types import LoadReport, RoutingData
from mixllm.data.accounting import check_rows, finish, rows_text
from mixllm.data.frames import flat, listed, query_frame, require_columns, text_ids
from mixllm.data.tables import read_table

LONG_COLUMNS = ("query", "llm", "quality", "cost")
_OPTIONAL = ("latency_s", "output_tokens")


def _checked(
    df: pd.DataFrame, column: str, low: float, high: float, notes: list[str]
) -> tuple[pd.Series, pd.Series]:
    """(values, bad): a numeric column and the rows holding a non-number or a value outside
    [low, high]; such rows are named in ``notes`` and then skipped, as in the wide format."""
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    bad = (values.isna() & raw.notna()) | (values.notna() & ~values.between(low, high))
    bad |= np.isinf(values)
    if bad.any():
        rows = listed((np.flatnonzero(bad.to_numpy()) + 1).tolist())
        notes.append(
            f"{rows_text(int(bad.sum()))} skipped: a non-numeric or out-of-range value in "
            f"column {column!r} (expected a number in [{low}, {high}]); data rows {rows}"
        )
    return values, bad


def _content_id(text: str) -> str:
    return "q" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:15]


def long_from_frame(df: pd.DataFrame, source: str = "long") -> RoutingData:
    """Build RoutingData from a long-format DataFrame (see ``load_long``)."""
    df = flat(df)
    require_columns(LONG_COLUMNS, df.columns, source, "long-format")
    report = LoadReport(source=source, rows_read=len(df))
    optional = [c for c in _OPTIONAL if c in df.columns]
    obs, out_of_range = _observations(df, optional, report.notes)

    has_quality = obs["quality"].notna() & ~out_of_range
    valid_other = obs[["cost", "llm", "query"]].notna().all(axis=1)
    report.skipped_missing_quality = int((~has_quality).sum())
    report.skipped_other = int((has_quality & ~valid_other).sum())
    obs = obs[has_quality & valid_other]
    report.rows_kept = len(obs)
    check_rows(report)
    return finish(_pivot(obs, optional, report))


def _observations(
    df: pd.DataFrame, optional: list[str], notes: list[str]
) -> tuple[pd.DataFrame, pd.Series]:
    """(observations, bad rows): numbers checked against their ranges, ids, LLM names and
    texts as strings."""
    bounds = {"quality": (0.0, 1.0), "cost": (0.0, np.inf)}
    bounds |= dict.fromkeys(optional, (0.0, np.inf))
    obs = pd.DataFrame(index=df.index)
    bad = pd.Series(False, index=df.index)
    for column, (low, high) in bounds.items():
        obs[column], wrong = _checked(df, column, low, high, notes)
        bad |= wrong

    query = df["query"].where(df["query"].isna(), df["query"].astype(str))
    ids = (
        text_ids(df["sample_id"]).astype(object)
        if "sample_id" in df.columns
        else pd.Series(None, index=df.index, dtype=object)
    )
    # Rows without an id are keyed by their text, so the same query from two LLMs meets.
    no_id = ids.isna() & query.notna()
    ids[no_id] = query[no_id].map(_content_id)
    obs["sample_id"] = ids
    obs["llm"] = df["llm"].where(df["llm"].isna(), df["llm"].astype(str))
    obs["query"] = query
    obs["prompt"] = _text_or(df, "prompt", query)
    obs["source"] = _text_or(df, "source", pd.Series("custom", index=df.index))
    return obs, bad


def _text_or(df: pd.DataFrame, column: str, fallback: pd.Series) -> pd.Series:
    if column not in df.columns:
        return fallback
    values = df[column].where(df[column].isna(), df[column].astype(str))
    return values.fillna(fallback)


def _pivot(obs: pd.DataFrame, optional: list[str], report: LoadReport) -> RoutingData:
    """One row per sample_id, one column per LLM; repeated (query, LLM) pairs are averaged."""
    repeated = int(obs.duplicated(["sample_id", "llm"]).sum())
    if repeated:
        report.notes.append(f"{repeated} repeated (query, llm) observations averaged")
    ids = pd.unique(obs["sample_id"])
    llms = [str(m) for m in pd.unique(obs["llm"])]
    means = obs.groupby(["sample_id", "llm"], sort=False)[["quality", "cost", *optional]].mean()

    def matrix(column: str) -> np.ndarray:
        table = means[column].unstack("llm").reindex(index=ids, columns=llms)
        return table.to_numpy(dtype=float)

    first = obs.drop_duplicates("sample_id").set_index("sample_id").loc[ids]
    quality = matrix("quality")
    observed = np.isfinite(quality).mean()
    report.notes.append(f"{len(ids)} queries x {len(llms)} LLMs, {observed:.0%} of pairs observed")
    return RoutingData(
        queries=query_frame(list(ids), first["query"], first["prompt"], first["source"]),
        llms=llms,
        quality=quality,
        cost=matrix("cost"),
        output_tokens=matrix("output_tokens") if "output_tokens" in optional else None,
        latency_s=matrix("latency_s") if "latency_s" in optional else None,
        report=report,
    )


def load_long(path: str | Path) -> RoutingData:
    """Load long-format logs: one row per (query, llm) with quality in [0, 1] and cost in $.

    Required columns: query, llm, quality, cost; optional: latency_s, output_tokens,
    sample_id (else a hash of the query text), source, prompt (else the query). Pairs
    never observed are NaN; repeated pairs are averaged (counted in the report notes).
    """
    return long_from_frame(read_table(path), source=str(path))
