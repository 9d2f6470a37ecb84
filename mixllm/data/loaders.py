"""Loaders turning routing logs into ``RoutingData``: RouterBench wide format (file, directory
or Hugging Face hub), long-format logs of one's own traffic, and the MESS+ latency file.

Every loader fills a ``LoadReport``: rows skipped for a missing quality, a duplicated
``sample_id`` or another defect are counted (and logged at WARNING), never silently lost.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mixllm.core.errors import DataError
from mixllm.core.prices import PriceTable, load_prices
from mixllm.core.tokens import count_tokens_many
from mixllm.core.types import LoadReport, RoutingData

logger = logging.getLogger(__name__)

# ".csv.gz" before ".csv": the first suffix that matches wins.
TABLE_SUFFIXES = (".csv.gz", ".csv", ".pkl", ".pickle", ".parquet", ".jsonl")

ROUTERBENCH_HUB_REPO = "withmartian/routerbench"
ROUTERBENCH_HUB_FILE = "routerbench_0shot.pkl"

COST_SUFFIX = "|total_cost"
RESPONSE_SUFFIX = "|model_response"
ROUTERBENCH_COLUMNS = ("sample_id", "prompt", "eval_name")
LONG_COLUMNS = ("query", "llm", "quality", "cost")
MESSPLUS_COLUMNS = ("input_text", "benchmark_name")
# MESS+ column suffix -> the LLM it measured (small / medium / large Llama).
MESSPLUS_LLMS = {"small": "llama-3.2-1b", "medium": "llama-3.1-8b", "large": "llama-3.3-70b"}

_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_MAX_LISTED = 10


# --------------------------------------------------------------------------- reading files


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in TABLE_SUFFIXES if name.endswith(s)), None)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one data file (.csv, .csv.gz, .pkl, .parquet, .jsonl) into a DataFrame."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory; expected a data file")
    suffix = _suffix(path)
    if suffix is None:
        raise DataError(
            f"unknown data file extension for {path}: expected one of {', '.join(TABLE_SUFFIXES)}"
        )
    if path.stat().st_size == 0:
        raise DataError(f"data file is empty: {path}")
    try:
        if suffix in (".csv", ".csv.gz"):
            df = pd.read_csv(path, dtype={"sample_id": str})
        elif suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix == ".jsonl":
            df = pd.read_json(path, lines=True, dtype=False)
        else:
            # Pickles run code when loaded: only load files from a source you trust.
            df = pd.read_pickle(path)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"data file is empty: {path}") from exc
    except Exception as exc:  # any parser/IO failure means the file is unusable as data
        raise DataError(f"cannot read data file {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{path} holds a {type(df).__name__}, expected a pandas DataFrame")
    return df


def read_path(path: str | Path) -> pd.DataFrame:
    """Read a data file, or every data file of a directory (sorted by name, concatenated)."""
    path = Path(path)
    if not path.is_dir():
        return read_table(path)
    files = sorted(p for p in path.iterdir() if p.is_file() and _suffix(p))
    if not files:
        raise DataError(f"no data files ({', '.join(TABLE_SUFFIXES)}) in directory {path}")
    return pd.concat([read_table(f) for f in files], ignore_index=True)


# --------------------------------------------------------------------------- shared helpers


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


def _ids(series: pd.Series) -> pd.Series:
    """Sample ids as strings; integral floats (ints read next to NaN) lose their ``.0``."""
    if pd.api.types.is_float_dtype(series):
        whole = series.notna() & (series % 1 == 0)
        out = series.astype(object)
        out[whole] = series[whole].astype(np.int64)
        series = out
    return series.where(series.isna(), series.astype(str))


def _duplicates(ids: pd.Series, complete: np.ndarray) -> np.ndarray:
    """Rows whose id was already taken: the first complete row of an id wins, else its first row."""
    order = pd.DataFrame({"id": ids.to_numpy(), "bad": ~complete, "pos": np.arange(len(ids))})
    order = order[ids.notna().to_numpy()].sort_values(["bad", "pos"], kind="stable")
    dup = np.zeros(len(ids), dtype=bool)
    dup[order.loc[order["id"].duplicated(), "pos"].to_numpy()] = True
    return dup


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    """Positional RangeIndex; a named index (e.g. sample_id in a pickle) becomes a column."""
    named = any(name is not None for name in df.index.names)
    return df.reset_index(drop=not named)


def _listed(values: Sequence[object]) -> str:
    shown = ", ".join(str(v) for v in values[:_MAX_LISTED])
    return shown + (f", ... ({len(values)} in all)" if len(values) > _MAX_LISTED else "")


def _require(columns: Sequence[str], present: pd.Index, source: str, what: str) -> None:
    missing = [c for c in columns if c not in present]
    if missing:
        raise DataError(f"{source}: missing required {what} columns: {', '.join(missing)}")


def _numeric(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Columns as a float matrix; values that are not numbers become NaN."""
    return df[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)


def _check_rows(report: LoadReport) -> None:
    if report.rows_kept == 0:
        raise DataError(f"{report.source}: no usable rows left ({report.summary()})")


def _finish(data: RoutingData) -> RoutingData:
    """Log the load report: WARNING when rows were skipped, so dirty data is never silent."""
    report = data.report
    if report is not None:
        message = "; ".join([report.summary(), *report.notes])
        level = logging.WARNING if report.rows_kept < report.rows_read else logging.INFO
        logger.log(level, "%s", message)
    return data


def _queries(
    sample_id: Sequence[str], query: Sequence[str], prompt: Sequence[str], source: Sequence[str]
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": pd.Series(sample_id, dtype=str).to_numpy(),
            "query": list(query),
            "prompt": list(prompt),
            "source": list(source),
            "prompt_tokens": count_tokens_many(prompt),
        }
    )


# --------------------------------------------------------------------------- RouterBench


def routerbench_llms(columns: Sequence[object]) -> list[str]:
    """LLM names of a RouterBench wide table, discovered from its ``<llm>|total_cost`` columns."""
    return [
        c[: -len(COST_SUFFIX)] for c in columns if isinstance(c, str) and c.endswith(COST_SUFFIX)
    ]


def routerbench_from_frame(df: pd.DataFrame, source: str = "routerbench") -> RoutingData:
    """Build RoutingData from a RouterBench wide DataFrame (see ``load_routerbench``)."""
    df = _flat(df)
    llms = routerbench_llms(df.columns)
    if not llms:
        raise DataError(
            f"{source}: no LLM columns (expected '<llm>{COST_SUFFIX}' columns); "
            f"found: {_listed(list(df.columns))}"
        )
    _require([*ROUTERBENCH_COLUMNS, *llms], df.columns, source, "RouterBench")
    report = LoadReport(source=source, rows_read=len(df))

    quality = _numeric(df, llms)
    cost = _numeric(df, [f"{m}{COST_SUFFIX}" for m in llms])
    _require_usable(quality, cost, llms, source)
    ids = _ids(df["sample_id"])
    has_quality = ~np.isnan(quality).any(axis=1)
    out_of_range = _out_of_range(quality, cost)
    valid_other = ~np.isnan(cost).any(axis=1) & df["prompt"].notna().to_numpy()
    valid_other &= ids.notna().to_numpy() & ~out_of_range.any(axis=1)
    dup = _duplicates(ids, has_quality & valid_other)
    keep = ~dup & has_quality & valid_other

    report.skipped_duplicate_id = int(dup.sum())
    report.skipped_missing_quality = int((~dup & ~has_quality).sum())
    report.skipped_other = int((~dup & has_quality & ~valid_other).sum())
    report.rows_kept = int(keep.sum())
    report.notes.extend(_routerbench_notes(df[llms], quality, ids, dup))
    report.notes.extend(_range_notes(out_of_range, llms))
    _check_rows(report)

    kept = df.loc[keep]
    turns = kept["prompt"].map(parse_turns)
    prompts = ["\n\n".join(t) for t in turns]
    # Few-shot tasks (ARC, Winogrande) put worked examples before the real question.
    questions = [last_block(t[-1]) if t else "" for t in turns]
    sources = kept["eval_name"].fillna("custom").astype(str).tolist()
    return _finish(
        RoutingData(
            queries=_queries(ids[keep].tolist(), questions, prompts, sources),
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
        f"{_rows(rows)} skipped for a quality outside [0, 1] or a negative/infinite cost: {named}"
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
            f"{_rows(int((~has_quality).sum()))} have a missing quality value; {overlap} of"
            " them are extra copies of a duplicated sample_id and are counted as duplicates"
        )
    repeated = ids[ids.duplicated(keep=False) & ids.notna()].unique().tolist()
    if repeated:
        notes.append(f"{len(repeated)} sample_ids appear more than once: {_listed(repeated)}")
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


def parse_hf_path(url: str) -> tuple[str, str]:
    """Split ``hf://[datasets/]owner/name[/file]`` into (repo_id, filename)."""
    rest = url.removeprefix("hf://").removeprefix("datasets/").strip("/")
    parts = rest.split("/")
    if len(parts) < 2 or not all(parts[:2]):
        raise DataError(f"bad Hugging Face path {url!r}: expected hf://owner/name[/file]")
    filename = "/".join(parts[2:]) or ROUTERBENCH_HUB_FILE
    return "/".join(parts[:2]), filename


def load_routerbench_hub(
    repo_id: str = ROUTERBENCH_HUB_REPO,
    filename: str = ROUTERBENCH_HUB_FILE,
    cache_dir: str | Path | None = None,
    *,
    local_files_only: bool = False,
) -> RoutingData:
    """Download a RouterBench file from the Hugging Face hub (dataset repo) and load it."""
    from huggingface_hub import hf_hub_download

    try:
        local = hf_hub_download(
            repo_id=repo_id,
            filename=filename,
            repo_type="dataset",
            cache_dir=None if cache_dir is None else str(cache_dir),
            local_files_only=local_files_only,
        )
    except Exception as exc:  # hub errors come in many types; all mean "no file"
        raise DataError(
            f"cannot fetch {filename} from Hugging Face dataset {repo_id}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return load_routerbench(local)


# --------------------------------------------------------------------------- long format


def _checked(df: pd.DataFrame, column: str, source: str, low: float, high: float) -> pd.Series:
    """A numeric column; a non-number or a value outside [low, high] is a DataError."""
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    bad = (values.isna() & raw.notna()) | (values.notna() & ~values.between(low, high))
    bad |= np.isinf(values)
    if bad.any():
        rows = _listed((np.flatnonzero(bad.to_numpy()) + 1).tolist())
        raise DataError(
            f"{source}: {_rows(int(bad.sum()))} with a non-numeric or out-of-range value in "
            f"column {column!r} (expected a number in [{low}, {high}]); data rows {rows}"
        )
    return values


def _content_id(text: str) -> str:
    return "q" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:15]


def long_from_frame(df: pd.DataFrame, source: str = "long") -> RoutingData:
    """Build RoutingData from a long-format DataFrame (see ``load_long``)."""
    df = _flat(df)
    _require(LONG_COLUMNS, df.columns, source, "long-format")
    report = LoadReport(source=source, rows_read=len(df))
    obs = pd.DataFrame(
        {
            "quality": _checked(df, "quality", source, 0.0, 1.0),
            "cost": _checked(df, "cost", source, 0.0, np.inf),
        }
    )
    optional = [c for c in ("latency_s", "output_tokens") if c in df.columns]
    for column in optional:
        obs[column] = _checked(df, column, source, 0.0, np.inf)

    query = df["query"].where(df["query"].isna(), df["query"].astype(str))
    ids = (
        _ids(df["sample_id"]).astype(object)
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

    has_quality = obs["quality"].notna()
    valid_other = obs[["cost", "llm", "query"]].notna().all(axis=1)
    report.skipped_missing_quality = int((~has_quality).sum())
    report.skipped_other = int((has_quality & ~valid_other).sum())
    obs = obs[has_quality & valid_other]
    report.rows_kept = len(obs)
    _check_rows(report)
    return _finish(_pivot(obs, optional, report))


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
        queries=_queries(list(ids), first["query"], first["prompt"], first["source"]),
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


# --------------------------------------------------------------------------- MESS+


def messplus_from_frame(
    df: pd.DataFrame, source: str = "messplus", prices: PriceTable | None = None
) -> RoutingData:
    """Build RoutingData from the MESS+ DataFrame (see ``load_messplus``)."""
    df = _flat(df)
    sizes = list(MESSPLUS_LLMS)
    needed = [*MESSPLUS_COLUMNS, *(f"{p}_{s}" for p in ("acc", "inference_time") for s in sizes)]
    _require(needed, df.columns, source, "MESS+")
    llms = list(MESSPLUS_LLMS.values())
    prices = prices if prices is not None else load_prices()
    prices.validate_llms(llms)
    report = LoadReport(source=source, rows_read=len(df))

    # lm-eval scores ARC with length-normalised accuracy; its acc_* cells are empty.
    is_arc = df["benchmark_name"].astype(str).str.startswith("arc").to_numpy()[:, None]
    acc = _numeric(df, [f"acc_{s}" for s in sizes])
    norm_columns = [f"acc_norm_{s}" for s in sizes]
    norm = _numeric(df, norm_columns) if set(norm_columns) <= set(df.columns) else acc * np.nan
    quality = np.where(is_arc, norm, acc)
    latency = _numeric(df, [f"inference_time_{s}" for s in sizes])

    ids = df["benchmark_name"].astype(str) + "." + _messplus_doc_ids(df)
    has_quality = ~np.isnan(quality).any(axis=1)
    valid_other = ~np.isnan(latency).any(axis=1) & df["input_text"].notna().to_numpy()
    dup = _duplicates(ids, has_quality & valid_other)
    keep = ~dup & has_quality & valid_other
    report.skipped_duplicate_id = int(dup.sum())
    report.skipped_missing_quality = int((~dup & ~has_quality).sum())
    report.skipped_other = int((~dup & has_quality & ~valid_other).sum())
    report.rows_kept = int(keep.sum())
    _check_rows(report)

    kept = df.loc[keep]
    texts = kept["input_text"].astype(str).tolist()
    queries = _queries(ids[keep].tolist(), texts, texts, kept["benchmark_name"].astype(str))
    tokens = queries["prompt_tokens"].to_numpy(dtype=float)[:, None]
    input_price = np.array([prices[m].input_price for m in llms])
    return _finish(
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


def _messplus_doc_ids(df: pd.DataFrame) -> pd.Series:
    """``doc_id`` as text; the row position stands in where it is absent."""
    position = pd.Series([f"row{i}" for i in range(len(df))], index=df.index)
    if "doc_id" not in df.columns:
        return position
    return _ids(df["doc_id"]).fillna(position)


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


# --------------------------------------------------------------------------- dispatch


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
        f"acc_*, inference_time_*); found: {_listed(list(df.columns))}"
    )
