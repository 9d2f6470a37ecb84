"""Core data types shared by every stage: the routing dataset and routing decisions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class LoadReport:
    """What a loader read, kept and skipped, so that no row is lost silently."""

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    skipped_missing_quality: int = 0
    skipped_duplicate_id: int = 0
    skipped_other: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One human line describing the load."""
        parts = [f"{self.source}: read {self.rows_read} rows, kept {self.rows_kept}"]
        if self.skipped_missing_quality:
            parts.append(f"skipped {self.skipped_missing_quality} with missing quality")
        if self.skipped_duplicate_id:
            parts.append(f"skipped {self.skipped_duplicate_id} duplicate sample_id")
        if self.skipped_other:
            parts.append(f"skipped {self.skipped_other} other bad rows")
        return ", ".join(parts)


@dataclass
class RoutingData:
    """Queries with the recorded outcome of each LLM on each query.

    ``queries`` has one row per query (RangeIndex 0..n-1) with at least the columns
    ``sample_id`` (str), ``query`` (the text the router should understand: the real
    question without few-shot examples), ``prompt`` (the whole text that was sent and
    paid for), ``source`` (task/benchmark name, or "custom") and ``prompt_tokens`` (int).
    Matrices are (n_queries, n_llms) aligned with ``llms``; NaN marks an outcome that
    was not observed (long-format logs are sparse).
    """

    queries: pd.DataFrame
    llms: list[str]
    quality: np.ndarray
    cost: np.ndarray
    output_tokens: np.ndarray | None = None
    latency_s: np.ndarray | None = None
    report: LoadReport | None = None

    def __post_init__(self) -> None:
        n, k = len(self.queries), len(self.llms)
        for name in ("quality", "cost", "output_tokens", "latency_s"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != (n, k):
                raise ValueError(f"{name} has shape {arr.shape}, expected {(n, k)}")

    def __len__(self) -> int:
        return len(self.queries)

    def subset(self, idx: np.ndarray | list[int]) -> RoutingData:
        """Rows ``idx`` as a new RoutingData (index reset)."""
        idx = np.asarray(idx)

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return RoutingData(
            queries=self.queries.iloc[idx].reset_index(drop=True),
            llms=list(self.llms),
            quality=self.quality[idx],
            cost=self.cost[idx],
            output_tokens=take(self.output_tokens),
            latency_s=take(self.latency_s),
            report=self.report,
        )

    def split(self, test_size: float = 0.3, seed: int = 0) -> tuple[RoutingData, RoutingData]:
        """Random train/test split, stratified by ``source``."""
        rng = np.random.default_rng(seed)
        train, test = [], []
        for _, grp in self.queries.groupby("source", sort=True):
            idx = rng.permutation(grp.index.to_numpy())
            n_test = round(len(idx) * test_size)
            test.extend(idx[:n_test])
            train.extend(idx[n_test:])
        return self.subset(np.sort(train)), self.subset(np.sort(test))

    def concat(self, other: RoutingData) -> RoutingData:
        """Rows of ``self`` then ``other`` over the union of their LLMs (unobserved: NaN)."""
        llms = list(self.llms) + [m for m in other.llms if m not in self.llms]

        def widen(data: RoutingData, name: str) -> np.ndarray:
            out = np.full((len(data), len(llms)), np.nan)
            values = getattr(data, name)
            if values is not None:
                out[:, [llms.index(m) for m in data.llms]] = values
            return out

        def stacked(name: str) -> np.ndarray | None:
            if getattr(self, name) is None and getattr(other, name) is None:
                return None
            return np.vstack([widen(self, name), widen(other, name)])

        return RoutingData(
            queries=pd.concat([self.queries, other.queries], ignore_index=True),
            llms=llms,
            quality=stacked("quality"),
            cost=stacked("cost"),
            output_tokens=stacked("output_tokens"),
            latency_s=stacked("latency_s"),
            report=self.report,
        )

    def select_llms(self, names: list[str]) -> RoutingData:
        """The same queries over LLM columns ``names`` (in that order); raises ``KeyError``."""
        cols = [self.llm_index(m) for m in names]

        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[:, cols]

        return RoutingData(
            queries=self.queries,
            llms=list(names),
            quality=self.quality[:, cols],
            cost=self.cost[:, cols],
            output_tokens=take(self.output_tokens),
            latency_s=take(self.latency_s),
            report=self.report,
        )

    def shuffled_quality(self, seed: int) -> RoutingData:
        """The same queries with their quality rows permuted: a negative control."""
        perm = np.random.default_rng(seed).permutation(len(self))
        return RoutingData(
            queries=self.queries,
            llms=list(self.llms),
            quality=self.quality[perm],
            cost=self.cost,
            output_tokens=self.output_tokens,
            latency_s=self.latency_s,
            report=self.report,
        )

    def llm_index(self, name: str) -> int:
        """Column index of LLM ``name``."""
        try:
            return self.llms.index(name)
        except ValueError as exc:
            raise KeyError(f"unknown LLM {name!r}; known: {', '.join(self.llms)}") from exc
