"""Train / hold-out bookkeeping shared by the CLI, the benchmark and the pipeline."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mixllm.core.config import MixLLMConfig
from mixllm.core.errors import DataError
from mixllm.core.types import RoutingData
from mixllm.data.loaders import load_data

RECORD_FILE = "training.json"


def data_fingerprint(data: RoutingData) -> str:
    """Content hash of the queries and recorded outcomes (order-sensitive)."""
    h = hashlib.sha256()
    h.update("\0".join(data.llms).encode())
    h.update("\0".join(data.queries["sample_id"].astype(str)).encode())
    h.update("\0".join(data.queries["query"].astype(str)).encode())
    h.update(np.nan_to_num(data.quality, nan=-1.0).tobytes())
    h.update(np.nan_to_num(data.cost, nan=-1.0).tobytes())
    return h.hexdigest()[:16]


@dataclass
class TrainingRecord:
    """Where a router's training data came from and which queries it never saw."""

    data_path: str
    data_fingerprint: str
    seed: int
    test_size: float
    train_ids: list[str]
    test_ids: list[str]

    def save(self, router_dir: str | Path) -> None:
        """Write the record next to the saved router."""
        (Path(router_dir) / RECORD_FILE).write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, router_dir: str | Path) -> TrainingRecord:
        """Read the record saved with a router."""
        path = Path(router_dir) / RECORD_FILE
        if not path.exists():
            raise DataError(f"{path} is missing: the router was not saved by `mixllm train`")
        return cls(**json.loads(path.read_text()))


def split(data: RoutingData, config: MixLLMConfig) -> tuple[RoutingData, RoutingData]:
    """The train / held-out split every command uses (stratified by source, seeded)."""
    return data.split(config.train.test_size, config.train.seed)


def make_record(
    path: str | Path, data: RoutingData, train: RoutingData, test: RoutingData, config: MixLLMConfig
) -> TrainingRecord:
    """The record of a split of ``data`` loaded from ``path``."""
    return TrainingRecord(
        data_path=str(path),
        data_fingerprint=data_fingerprint(data),
        seed=config.train.seed,
        test_size=config.train.test_size,
        train_ids=train.queries["sample_id"].astype(str).tolist(),
        test_ids=test.queries["sample_id"].astype(str).tolist(),
    )


def select_ids(data: RoutingData, ids: list[str], keep: bool) -> RoutingData:
    """Rows of ``data`` whose sample_id is (keep=True) or is not (keep=False) in ``ids``."""
    wanted = set(ids)
    mask = data.queries["sample_id"].astype(str).isin(wanted).to_numpy()
    return data.subset(np.flatnonzero(mask if keep else ~mask))


def training_data(record: TrainingRecord) -> RoutingData:
    """Reload the exact rows a router was trained on."""
    data = load_data(record.data_path)
    train = select_ids(data, record.train_ids, keep=True)
    if len(train) != len(record.train_ids):
        raise DataError(
            f"{record.data_path} changed since training: {len(train)} of "
            f"{len(record.train_ids)} training queries found"
        )
    return train


def held_out(record: TrainingRecord, data: RoutingData) -> RoutingData:
    """The queries of ``data`` the router never trained on (empty -> DataError)."""
    test = select_ids(data, record.train_ids, keep=False)
    if len(test) == 0:
        raise DataError("every query of the evaluation data was used for training")
    return test
