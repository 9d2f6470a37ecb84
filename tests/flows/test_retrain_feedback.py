"""Feedback is data: every stored row reaches every later retraining (or the configured
window of the newest rows), whatever was promoted in between and whatever its timestamp.

The tests of this module share one store and one feedback database and run in order.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from mixllm.registry import stores as registry
from mixllm.registry.feedback import FeedbackStore, utcnow
from tests.tiny_data import SPECIALISTS

pytestmark = [pytest.mark.flow, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def feedback_url(
    mlflow_store: str, prefect_api: str, tiny_data: Path, fast_config: Path, tmp_path_factory
):
    """A feedback database, after v1 was trained on the tiny data."""
    from flows.training import train_flow

    assert train_flow(data=str(tiny_data), config_path=str(fast_config)).alias == "champion"
    return f"sqlite:///{tmp_path_factory.mktemp('retrain') / 'feedback.db'}"


def add(url: str, start: int, n: int) -> list[str]:
    """``n`` honest feedback rows on new coding queries; their request ids."""
    store = FeedbackStore(url)
    ids = []
    for i in range(start, start + n):
        rid = f"req-{i}"
        store.log_decision(
            rid,
            query=f"Write a python function to invert a dictionary, variant {i}.",
            llm=SPECIALISTS["mbpp"],
            router_version="1",
        )
        store.add_feedback(rid, quality=1.0, latency_s=0.8)
        ids.append(rid)
    store.close()
    return ids


def retrain(url: str, tiny_data: Path, fast_config: Path, **extra):
    from flows.training import retrain_flow

    return retrain_flow(
        data=str(tiny_data), feedback_url=url, config_path=str(fast_config), **extra
    )


def test_later_retrainings_keep_earlier_feedback(
    feedback_url: str, tiny_data: Path, fast_config: Path
) -> None:
    add(feedback_url, 0, 6)
    first = retrain(feedback_url, tiny_data, fast_config)
    assert first is not None and first.feedback_rows == 6
    tags = registry.client().get_model_version(registry.MODEL_NAME, first.version).tags
    assert tags[registry.TAG_WATERMARK] == "6"  # the largest feedback id, not a time
    add(feedback_url, 6, 4)
    second = retrain(feedback_url, tiny_data, fast_config)
    assert second is not None and second.feedback_rows == 10  # not only the 4 new ones
    run = registry.client().get_run(second.run_id)
    assert run.data.params["flow.feedback_rows"] == "10"


def test_a_window_keeps_only_the_newest_rows(
    feedback_url: str, tiny_data: Path, fast_config: Path
) -> None:
    add(feedback_url, 10, 2)
    result = retrain(feedback_url, tiny_data, fast_config, feedback_window=5)
    assert result is not None and result.feedback_rows == 5


def test_a_row_stamped_before_the_last_training_still_counts(
    feedback_url: str, tiny_data: Path, fast_config: Path
) -> None:
    (rid,) = add(feedback_url, 12, 1)
    engine = sa.create_engine(feedback_url)
    with engine.begin() as conn:  # as if its transaction had started an hour ago
        conn.execute(
            sa.text("UPDATE feedback SET created_at = :t WHERE request_id = :r"),
            {"t": utcnow() - timedelta(hours=1), "r": rid},
        )
    engine.dispose()
    result = retrain(feedback_url, tiny_data, fast_config)
    assert result is not None and result.feedback_rows == 13
