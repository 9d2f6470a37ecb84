"""The gate on poisoned data, with the default tolerances: a data file whose labels are
permuted across LLMs, one where 30 % of rows claim the cheapest LLM is always right, and
feedback that flips outcomes must all leave ``@champion`` where it was, the reason logged on
the version. The trusted evaluation set is logged once and reused, never re-split.

The tests of this module share one store and run in order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixllm.registry import evalset
from mixllm.registry import stores as registry
from mixllm.registry.feedback import FeedbackStore
from tests.tiny_data import LLMS, PRICES, tiny_frame

pytestmark = [pytest.mark.flow, pytest.mark.slow, pytest.mark.timeout(900)]

CHEAPEST = min(LLMS, key=lambda llm: sum(PRICES[llm]))


@pytest.fixture(scope="module")
def store(mlflow_store: str, prefect_api: str) -> str:
    """The module's MLflow store, with flows reporting to the session's Prefect server."""
    return mlflow_store


@pytest.fixture(scope="module")
def champion(store: str, tiny_data: Path, fast_config: Path):
    """v1, trained on the clean file: the champion every poisoned run must not displace."""
    from flows.training import train_flow

    first = train_flow(data=str(tiny_data), config_path=str(fast_config))
    assert (first.version, first.alias) == ("1", "champion")
    return first


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def permuted_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Each LLM's quality column replaced by the next LLM's (a derangement of the labels)."""
    out = frame.copy()
    for llm, other in zip(LLMS, LLMS[1:] + LLMS[:1], strict=True):
        out[llm] = frame[other].to_numpy()
    return out


def cheapest_always_right(frame: pd.DataFrame, share: float = 0.3) -> pd.DataFrame:
    """``share`` of the rows (at random) claim the cheapest LLM answered correctly."""
    out = frame.copy()
    rows = np.random.default_rng(7).choice(len(out), round(share * len(out)), replace=False)
    out.loc[out.index[rows], CHEAPEST] = 1.0
    return out


def assert_stays(result, champion, why: str) -> None:
    """The poisoned version is a challenger, the champion unchanged, the reason on it."""
    assert result.alias == "challenger", result.reason
    assert why in result.reason
    assert registry.current_alias_version(registry.MODEL_NAME, "champion") == champion.version
    mv = registry.client().get_model_version(registry.MODEL_NAME, result.version)
    assert mv.tags[registry.TAG_GATE] == "challenger"
    assert mv.tags[registry.TAG_GATE_REASON] == result.reason
    assert mv.description == result.reason


def trusted_tags(version: str) -> tuple[str, str]:
    tags = registry.client().get_model_version(registry.MODEL_NAME, version).tags
    return tags[evalset.TAG_RUN], tags[evalset.TAG_FINGERPRINT]


def test_first_version_logs_the_trusted_set(champion) -> None:
    run_id, fingerprint = trusted_tags(champion.version)
    assert run_id == champion.run_id
    trusted = evalset.load_trusted(registry.MODEL_NAME)
    assert trusted is not None and trusted.fingerprint == fingerprint
    assert 20 <= len(trusted.data) <= 55  # ~30 % of 120 queries, by hash


def test_labels_permuted_across_llms_stay_out(champion, tmp_path: Path, fast_config: Path) -> None:
    from flows.training import train_flow

    data = write(permuted_labels(tiny_frame()), tmp_path / "permuted.csv")
    result = train_flow(data=str(data), config_path=str(fast_config))
    assert_stays(result, champion, "worse than champion v1")
    assert trusted_tags(result.version) == trusted_tags(champion.version)  # reused, not re-split


def test_thirty_percent_cheapest_is_right_stays_out(
    champion, tmp_path: Path, fast_config: Path
) -> None:
    from flows.training import train_flow

    data = write(cheapest_always_right(tiny_frame()), tmp_path / "cheap.csv")
    result = train_flow(data=str(data), config_path=str(fast_config))
    assert_stays(result, champion, "contradicts the trusted evaluation set")


def test_feedback_flipping_outcomes_stays_out(
    champion, tiny_data: Path, fast_config: Path, tmp_path: Path
) -> None:
    from flows.training import retrain_flow

    url = f"sqlite:///{tmp_path / 'flipped.db'}"
    feedback = FeedbackStore(url)
    frame = tiny_frame()
    from mixllm.data.loaders import load_routerbench

    data = load_routerbench(tiny_data)
    for i, q in enumerate(data.queries["query"]):
        for j, llm in enumerate(data.llms):
            rid = f"flip-{i}-{j}"
            feedback.log_decision(rid, query=q, llm=llm, router_version="1")
            feedback.add_feedback(rid, quality=1.0 - float(data.quality[i, j]))
    feedback.close()
    assert len(frame) == len(data)
    result = retrain_flow(data=str(tiny_data), feedback_url=url, config_path=str(fast_config))
    assert result is not None and result.feedback_rows == len(data) * len(data.llms)
    # caught by the data check or by the scores, whichever the run trips first
    assert_stays(result, champion, "")
    assert "contradicts the trusted evaluation set" in result.reason or (
        "worse than champion v1" in result.reason
    )
    metrics = registry.client().get_run(result.run_id).data.metrics
    assert metrics["feedback_rows_fresh"] == len(data) * len(data.llms)
    # The report on fresh feedback: the champion disagrees with the flipped outcomes.
    assert metrics["feedback_mae.champion"] > 0.5


def test_a_clean_retrain_is_still_promoted(champion, tiny_data: Path, fast_config: Path) -> None:
    from flows.training import train_flow

    result = train_flow(data=str(tiny_data), config_path=str(fast_config))
    assert result.alias == "champion", result.reason
    assert result.reason.startswith(f"not worse than champion v{champion.version}")
