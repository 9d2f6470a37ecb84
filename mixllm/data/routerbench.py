"""RouterBench wide format: one row per query, ``<llm>`` quality and ``<llm>|total_cost``
columns per LLM; parsing of its prompts (turns, few-shot blocks) and recorded answers."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mixllm.core.errors import DataError
from mixllm.core.tokens import count_tokens_many
from mixllm.core.types import LoadReport, RoutingData
from mixllm.data.accounting import account_rows, finish, rows_text
from mixllm.data.frames import flat, listed, numeric, query_frame, require_columns, text_ids
from mixllm.data.tables import read_path

COST_SUFFIX = "|total_cost"
RESPONSE_SUFFIX = "|model_response"
ROUTERBENCH_COLUMNS = ("sample_id", "prompt", "eval_name")

_BLANK_LINE = re.compile(r"\n[ \t]*\n")


# --------------------------------------------------------------------------- prompts


def parse_turns(value: object) -> list[str]:
    """The turns of a RouterBench prompt/response: a list, or a list literal rendered as text."""
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v) for v in value]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    text = str(value)
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            parsed = ast.literal_eval(stripped)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return [text]
        if isinstance(parsed, list | tuple):
            return [str(v) for v in parsed]
    return [text]


def last_block(text: str) -> str:
    """The last blank-line-separated block of ``text``: the question after few-shot examples."""
    blocks = [b.strip() for b in _BLANK_LINE.split(text) if b.strip()]
    return blocks[-1] if blocks else text.strip()


# --------------------------------------------------------------------------- the table


def routerbench_llms(columns: Sequence[object]) -> list[str]:
    """LLM names of a RouterBench wide table, discovered from its ``<llm>|total_cost`` columns."""
    return [
        c[: -len(COST_SUFFIX)] for c in columns if isinstance(c, str) and c.endswith(COST_SUFFIX)
    ]


def routerbench_from_frame(df: pd.DataFrame, source: str = "routerbench") -> RoutingData:
    """Build RoutingData from a RouterBench wide DataFrame (see ``load_routerbench``)."""
    df = flat(df)
    llms = routerbench_llms(df.columns)
    if not llms:
        raise DataError(
            f"{source}: no LLM columns (expected '<llm>{COST_SUFFIX}' columns); "
            f"found: {listed(list(df.columns))}"
        )
    require_columns([*ROUTERBENCH_COLUMNS, *llms], df.columns, source, "RouterBench")
    report = LoadReport(source=source, rows_read=len(df))

    quality = numeric(df, llms)
    cost = numeric(df, [f"{m}{COST_SUFFIX}" for m in llms])
    _require_usable(quality, cost, llms, source)
    ids = text_ids(df["sample_id"])
    has_quality = ~np.isnan(quality).any(axis=1)
    out_of_range = _out_of_range(quality, cost)
    valid_other = ~np.isnan(cost).any(axis=1) & df["prompt"].notna().to_numpy()
    valid_other &= ids.notna().to_numpy() & ~out_of_range.any(axis=1)
    dup, keep = account_rows(report, ids, has_quality, valid_other)
    report.notes.extend(_routerbench_notes(df[llms], quality, ids, dup))
    report.notes.extend(_range_notes(out_of_range, llms))

    kept = df.loc[keep]
    turns = kept["prompt"].map(parse_turns)
    prompts = ["\n\n".join(t) for t in turns]
    # Few-shot tasks (ARC, Winogrande) put worked examples before the real question.
    questions = [last_block(t[-1]) if t else "" for t in turns]
    sources = kept["eval_name"].fillna("custom").astype(str).tolist()
    return finish(
        RoutingData(
            queries=query_frame(ids[keep].tolist(), questions, prompts, sources),
            llms=llms,
            quality=quality[keep],
            cost=cost[keep],
            output_tokens=_response_tokens(kept, llms),
            report=report,
        )
    )


def _out_of_range(quality: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """(n, k) True where a quality is outside [0, 1] or a cost is negative or infinite."""
    with np.errstate(invalid="ignore"):
        bad_quality = ~np.isnan(quality) & ((quality < 0) | (quality > 1) | np.isinf(quality))
        bad_cost = ~np.isnan(cost) & ((cost < 0) | np.isinf(cost))
    return bad_quality | bad_cost


def _range_notes(out_of_range: np.ndarray, llms: list[str]) -> list[str]:
    """One note naming the LLMs whose values were out of range and how many rows it cost."""
    per_llm = out_of_range.sum(axis=0)
    if not per_llm.any():
        return []
    named = ", ".join(f"{llm} ({int(n)})" for llm, n in zip(llms, per_llm, strict=True) if n)
    rows = int(out_of_range.any(axis=1).sum())
    return [
        f"{rows_text(rows)} skipped for a quality outside [0, 1] or a negative/infinite cost: "
        f"{named}"
    ]


def _require_usable(quality: np.ndarray, cost: np.ndarray, llms: list[str], source: str) -> None:
    """DataError naming every LLM with no usable quality or cost in any row: one broken
    column would otherwise drop every row with a vague 'no usable rows'."""
    if not len(quality):
        return
    with np.errstate(invalid="ignore"):
        q_ok = np.isfinite(quality) & (quality >= 0) & (quality <= 1)
        c_ok = np.isfinite(cost) & (cost >= 0)
    broken = [llm for j, llm in enumerate(llms) if not q_ok[:, j].any() or not c_ok[:, j].any()]
    if broken:
        raise DataError(
            f"{source}: no usable quality or cost value in any row for LLM(s) "
            f"{', '.join(broken)}; fix or remove their columns"
        )


def _routerbench_notes(
    raw_quality: pd.DataFrame, quality: np.ndarray, ids: pd.Series, dup: np.ndarray
) -> list[str]:
    """What the counts alone do not say: non-numbers, and rows both duplicated and incomplete."""
    notes = []
    not_numeric = int((raw_quality.notna().to_numpy() & np.isnan(quality)).sum())
    if not_numeric:
        notes.append(f"{not_numeric} quality values were not numbers (treated as missing)")
    has_quality = ~np.isnan(quality).any(axis=1)
    overlap = int((dup & ~has_quality).sum())
    if overlap:
        # A row is counted once; say how many of the duplicates also lacked quality.
        notes.append(
            f"{rows_text(int((~has_quality).sum()))} have a missing quality value; {overlap} of"
            " them are extra copies of a duplicated sample_id and are counted as duplicates"
        )
    repeated = ids[ids.duplicated(keep=False) & ids.notna()].unique().tolist()
    if repeated:
        notes.append(f"{len(repeated)} sample_ids appear more than once: {listed(repeated)}")
    return notes


def _response_tokens(kept: pd.DataFrame, llms: list[str]) -> np.ndarray:
    """Output tokens per (query, LLM) counted on the recorded answers; NaN without an answer."""
    out = np.full((len(kept), len(llms)), np.nan)
    for j, llm in enumerate(llms):
        column = f"{llm}{RESPONSE_SUFFIX}"
        if column not in kept.columns:
            continue
        responses = kept[column]
        answered = responses.notna().to_numpy()
        texts = ["\n\n".join(parse_turns(r)) for r in responses[answered]]
        out[answered, j] = count_tokens_many(texts)
    return out


def load_routerbench(path: str | Path) -> RoutingData:
    """Load RouterBench wide format: a .csv/.csv.gz/.pkl/.parquet file or a directory of them.

    LLMs are the ``<llm>|total_cost`` columns; ``prompt`` is the whole text sent (turns
    joined), ``query`` the last blank-line block of the last turn (drops few-shot
    examples), ``output_tokens`` the token count of ``<llm>|model_response``. Rows with a
    missing quality and repeated ``sample_id``s are skipped and counted in the report.
    """
    return routerbench_from_frame(read_path(path), source=str(path))
