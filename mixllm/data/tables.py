"""Reading data files: one table (.csv, .csv.gz, .pkl, .parquet, .jsonl) or a directory of
them, into a DataFrame; every failure is a ``DataError`` naming the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mixllm.core.errors import DataError

# ".csv.gz" before ".csv": the first suffix that matches wins.
TABLE_SUFFIXES = (".csv.gz", ".csv", ".pkl", ".pickle", ".parquet", ".jsonl")


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
        df = _parse(path, suffix)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"data file is empty: {path}") from exc
    except Exception as exc:  # any parser/IO failure means the file is unusable as data
        raise DataError(f"cannot read data file {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{path} holds a {type(df).__name__}, expected a pandas DataFrame")
    return df


def _parse(path: Path, suffix: str) -> object:
    """The file's content by its suffix (a pickle may hold something other than a frame)."""
    if suffix in (".csv", ".csv.gz"):
        return pd.read_csv(path, dtype={"sample_id": str})
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    # Pickles run code when loaded: only load files from a source you trust.
    return pd.read_pickle(path)


def read_path(path: str | Path) -> pd.DataFrame:
    """Read a data file, or every data file of a directory (sorted by name, concatenated)."""
    path = Path(path)
    if not path.is_dir():
        return read_table(path)
    files = sorted(p for p in path.iterdir() if p.is_file() and _suffix(p))
    if not files:
        raise DataError(f"no data files ({', '.join(TABLE_SUFFIXES)}) in directory {path}")
    return pd.concat([read_table(f) for f in files], ignore_index=True)
