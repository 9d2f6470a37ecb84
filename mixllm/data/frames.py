"""Column helpers shared by the loaders: required columns, numbers, sample ids, and the
``queries`` frame every ``RoutingData`` carries."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mixllm.core.errors import DataError
from mixllm.core.tokens import count_tokens_many

_MAX_LISTED = 10


def text_ids(series: pd.Series) -> pd.Series:
    """Sample ids as strings; integral floats (ints read next to NaN) lose their ``.0``."""
    if pd.api.types.is_float_dtype(series):
        whole = series.notna() & (series % 1 == 0)
        out = series.astype(object)
        out[whole] = series[whole].astype(np.int64)
        series = out
    return series.where(series.isna(), series.astype(str))


def flat(df: pd.DataFrame) -> pd.DataFrame:
    """Positional RangeIndex; a named index (e.g. sample_id in a pickle) becomes a column."""
    named = any(name is not None for name in df.index.names)
    return df.reset_index(drop=not named)


def listed(values: Sequence[object]) -> str:
    """The first few ``values`` comma-separated, with the total when there are more."""
    shown = ", ".join(str(v) for v in values[:_MAX_LISTED])
    return shown + (f", ... ({len(values)} in all)" if len(values) > _MAX_LISTED else "")


def require_columns(columns: Sequence[str], present: pd.Index, source: str, what: str) -> None:
    """DataError naming every one of ``columns`` missing from ``present``."""
    missing = [c for c in columns if c not in present]
    if missing:
        raise DataError(f"{source}: missing required {what} columns: {', '.join(missing)}")


def numeric(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Columns as a float matrix; values that are not numbers become NaN."""
    return df[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)


def query_frame(
    sample_id: Sequence[str], query: Sequence[str], prompt: Sequence[str], source: Sequence[str]
) -> pd.DataFrame:
    """The ``queries`` frame of ``RoutingData``, with the prompts' token counts."""
    return pd.DataFrame(
        {
            "sample_id": pd.Series(sample_id, dtype=str).to_numpy(),
            "query": list(query),
            "prompt": list(prompt),
            "source": list(source),
            "prompt_tokens": count_tokens_many(prompt),
        }
    )
