"""The trusted evaluation set: the rows every candidate and the champion are gated on.

It is fixed per registered model: the first gated version logs the held-out rows of its data
file (never feedback) as an artifact with their content fingerprint, and every later version
references that same artifact by tag; a changed artifact is refused. New data files and
feedback therefore cannot change what the gate measures, and because the split is a stable
hash of ``sample_id`` (not a seeded shuffle), adding rows never moves old rows across it.
Training runs never train on a trusted row (same ``sample_id`` or same query text).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mixllm.core.errors import RegistryError
from mixllm.core.types import RoutingData
from mixllm.registry.stores import client, mlflow_module

ARTIFACT_DIR = "trusted_eval"
FILE_NAME = "trusted.parquet"
TAG_RUN = "mixllm.trusted_eval_run"  # the run whose artifact holds the set
TAG_FINGERPRINT = "mixllm.trusted_eval_fingerprint"
_MATRICES = ("quality", "cost", "output_tokens", "latency_s")
_SALT = "mixllm-heldout-v1"  # changing it would move every row: never change it


def held_out_mask(sample_ids: pd.Series | list[str], fraction: float) -> np.ndarray:
    """True for the ids in the held-out ``fraction``: a stable hash of each id alone."""
    ids = pd.Series(sample_ids, dtype=str)
    draws = ids.map(lambda s: int(hashlib.sha256(f"{_SALT}:{s}".encode()).hexdigest()[:15], 16))
    return (draws.to_numpy(dtype=float) / 16**15) < fraction


def hash_split(data: RoutingData, fraction: float) -> tuple[RoutingData, RoutingData]:
    """(train, held-out) of ``data``, by ``held_out_mask`` of its sample ids."""
    mask = held_out_mask(data.queries["sample_id"], fraction)
    return data.subset(np.flatnonzero(~mask)), data.subset(np.flatnonzero(mask))


def without(data: RoutingData, trusted: RoutingData) -> RoutingData:
    """``data`` minus every row that shares a sample_id or a query text with ``trusted``."""
    ids = set(trusted.queries["sample_id"].astype(str))
    texts = set(trusted.queries["query"].astype(str))
    q = data.queries
    keep = ~(q["sample_id"].astype(str).isin(ids) | q["query"].astype(str).isin(texts))
    return data.subset(np.flatnonzero(keep.to_numpy()))


@dataclass(frozen=True)
class TrustedSet:
    """The trusted rows and where they are stored."""

    data: RoutingData
    fingerprint: str
    run_id: str | None = None  # None until logged

    def tags(self, run_id: str) -> dict[str, str]:
        """The version tags referencing this set (``run_id``: the run logging it, if new)."""
        return {TAG_RUN: self.run_id or run_id, TAG_FINGERPRINT: self.fingerprint}


def fingerprint(data: RoutingData) -> str:
    """Content hash of a trusted set (queries and recorded outcomes)."""
    from mixllm.data.splits import data_fingerprint

    return data_fingerprint(data)


def new_trusted(held_out: RoutingData, feedback_source: str) -> TrustedSet:
    """A first trusted set: the held-out rows of the data file (feedback is never trusted)."""
    rows = np.flatnonzero((held_out.queries["source"] != feedback_source).to_numpy())
    data = held_out.subset(rows)
    return TrustedSet(data, fingerprint(data))


def to_frame(data: RoutingData) -> pd.DataFrame:
    """One row per query: its query columns, then ``<matrix>|<llm>`` for every outcome."""
    columns = {c: data.queries[c].to_numpy() for c in data.queries.columns}
    for name in _MATRICES:
        values = getattr(data, name)
        if values is not None:
            columns.update({f"{name}|{llm}": values[:, j] for j, llm in enumerate(data.llms)})
    return pd.DataFrame(columns)


def from_frame(frame: pd.DataFrame) -> RoutingData:
    """The RoutingData ``to_frame`` wrote."""
    llms = [c.split("|", 1)[1] for c in frame.columns if c.startswith("quality|")]
    query_columns = [c for c in frame.columns if "|" not in c]

    def matrix(name: str) -> np.ndarray | None:
        cols = [f"{name}|{llm}" for llm in llms]
        if not all(c in frame.columns for c in cols):
            return None
        return frame[cols].to_numpy(dtype=float)

    queries = frame[query_columns].reset_index(drop=True)
    queries["sample_id"] = queries["sample_id"].astype(str)
    return RoutingData(queries, llms, **{name: matrix(name) for name in _MATRICES})


def log_trusted(trusted: TrustedSet) -> None:
    """Log a new trusted set into the active run."""
    with tempfile.TemporaryDirectory(prefix="mixllm-trusted-") as tmp:
        path = Path(tmp) / FILE_NAME
        to_frame(trusted.data).to_parquet(path, index=False)
        mlflow_module().log_artifact(str(path), artifact_path=ARTIFACT_DIR)


def load_trusted(name: str, uri: str | None = None) -> TrustedSet | None:
    """The registered model's trusted set (that of its earliest version having one), None if
    no version has one; RegistryError if its artifact no longer matches its fingerprint."""
    tagged = [
        mv
        for mv in client(uri).search_model_versions(f"name='{name}'")
        if TAG_RUN in mv.tags and TAG_FINGERPRINT in mv.tags
    ]
    if not tagged:
        return None
    first = min(tagged, key=lambda mv: int(mv.version))
    run_id, expected = first.tags[TAG_RUN], first.tags[TAG_FINGERPRINT]
    try:
        local = client(uri).download_artifacts(run_id, f"{ARTIFACT_DIR}/{FILE_NAME}")
        data = from_frame(pd.read_parquet(local))
    except Exception as exc:
        raise RegistryError(
            f"the trusted evaluation set of {name} (run {run_id}) cannot be read: {exc}"
        ) from exc
    actual = fingerprint(data)
    if actual != expected:
        raise RegistryError(
            f"the trusted evaluation set of {name} (run {run_id}) was changed: fingerprint "
            f"{actual}, registered {expected}; refusing to gate on it"
        )
    return TrustedSet(data, expected, run_id)


def split_for_training(
    data: RoutingData, fraction: float, trusted: TrustedSet | None, feedback_source: str
) -> tuple[RoutingData, RoutingData, TrustedSet]:
    """(train, held-out report rows, trusted set) of one training run.

    The held-out rows are ``data``'s by the stable hash; without a trusted set yet, their
    non-feedback part becomes it. Train never holds a trusted row.
    """
    train, test = hash_split(data, fraction)
    if trusted is None:
        trusted = new_trusted(test, feedback_source)
    return without(train, trusted.data), test, trusted


def contradictions(data: RoutingData, trusted: RoutingData) -> tuple[int, int]:
    """(rows of ``data`` that are trusted queries, how many of them contradict the trusted
    outcome): a row is matched by sample_id, else by query text, and contradicts when some
    LLM's recorded quality is more than 0.5 away from the trusted one."""
    ids = {s: i for i, s in enumerate(trusted.queries["sample_id"].astype(str))}
    texts = {t: i for i, t in enumerate(trusted.queries["query"].astype(str))}
    columns = [(j, trusted.llms.index(m)) for j, m in enumerate(data.llms) if m in trusted.llms]
    shared = contradicting = 0
    for row, (sid, text) in enumerate(
        zip(data.queries["sample_id"].astype(str), data.queries["query"].astype(str), strict=True)
    ):
        match = ids.get(sid, texts.get(text))
        if match is None:
            continue
        shared += 1
        ours = np.array([data.quality[row, j] for j, _ in columns])
        theirs = np.array([trusted.quality[match, k] for _, k in columns])
        if np.any(np.abs(ours - theirs) > 0.5):  # NaN (unobserved) compares False
            contradicting += 1
    return shared, contradicting
