"""Row accounting shared by the loaders: which rows are kept, which are skipped and why
(missing quality, duplicated ``sample_id``, other defects), counted in the ``LoadReport``
and logged, so dirty data is never lost silently."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from mixllm.core.errors import DataError
from mixllm.core.types import LoadReport, RoutingData

logger = logging.getLogger(__name__)


def duplicates(ids: pd.Series, complete: np.ndarray) -> np.ndarray:
    """Rows whose id was already taken: the first complete row of an id wins, else its first row."""
    order = pd.DataFrame({"id": ids.to_numpy(), "bad": ~complete, "pos": np.arange(len(ids))})
    order = order[ids.notna().to_numpy()].sort_values(["bad", "pos"], kind="stable")
    dup = np.zeros(len(ids), dtype=bool)
    dup[order.loc[order["id"].duplicated(), "pos"].to_numpy()] = True
    return dup


def account_rows(
    report: LoadReport, ids: pd.Series, has_quality: np.ndarray, valid_other: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(duplicated, kept) row masks of a wide table, counted in ``report``.

    A row is counted once: a duplicate is a duplicate whatever else is wrong with it, and a
    row without quality is not also counted as otherwise bad. DataError if nothing is kept."""
    dup = duplicates(ids, has_quality & valid_other)
    keep = ~dup & has_quality & valid_other
    report.skipped_duplicate_id = int(dup.sum())
    report.skipped_missing_quality = int((~dup & ~has_quality).sum())
    report.skipped_other = int((~dup & has_quality & ~valid_other).sum())
    report.rows_kept = int(keep.sum())
    check_rows(report)
    return dup, keep


def check_rows(report: LoadReport) -> None:
    """DataError when the load kept no row at all."""
    if report.rows_kept == 0:
        raise DataError(f"{report.source}: no usable rows left ({report.summary()})")


def finish(data: RoutingData) -> RoutingData:
    """Log the load report: WARNING when rows were skipped, so dirty data is never silent."""
    report = data.report
    if report is not None:
        message = "; ".join([report.summary(), *report.notes])
        level = logging.WARNING if report.rows_kept < report.rows_read else logging.INFO
        logger.log(level, "%s", message)
    return data


def rows_text(n: int) -> str:
    """``n`` rows in words: "1 row", "3 rows"."""
    return f"{n} row" if n == 1 else f"{n} rows"
