"""The retraining trigger counts feedback by id: rows above the champion's watermark (the
largest feedback id it trained on) and above the last trigger, never by wall-clock time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mixllm.registry.feedback import FeedbackStore
from mixllm.serving.metrics import service_metrics
from mixllm.serving.retraining import RetrainTrigger

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]


class Runs:
    """The trigger's callable: records the parameters of each run it is asked to start."""

    def __init__(self) -> None:
        self.started: list[dict] = []

    def __call__(self, parameters: dict) -> str:
        self.started.append(parameters)
        return f"run-{len(self.started)}"


def fill(store: FeedbackStore, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        store.log_decision(f"r{i}", query=f"q{i}", llm="a")
        store.add_feedback(f"r{i}", quality=1.0)


def wait_started(runs: Runs, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(runs.started) < n:
        assert time.monotonic() < deadline, runs.started
        time.sleep(0.05)


@pytest.fixture
def store(tmp_path: Path) -> FeedbackStore:
    s = FeedbackStore(f"sqlite:///{tmp_path / 'fb.db'}")
    yield s
    s.close()


def trigger(store: FeedbackStore, runs: Runs, threshold: int = 3) -> RetrainTrigger:
    return RetrainTrigger(
        store, runs, service_metrics(), threshold=threshold, min_gap_s=0, deployment="d"
    )


def test_only_rows_above_the_champions_watermark_count(store: FeedbackStore) -> None:
    runs = Runs()
    fill(store, 7)
    trigger(store, runs).maybe_start("5")  # trained on ids 1..5: two new rows, threshold 3
    time.sleep(0.3)
    assert runs.started == []
    fill(store, 1, start=7)
    trigger(store, runs).maybe_start("5")
    wait_started(runs, 1)
    assert store.last_trigger_feedback_id() == 8


def test_a_trigger_covers_its_rows_and_a_time_watermark_counts_everything(
    store: FeedbackStore,
) -> None:
    runs = Runs()
    fill(store, 3)
    t = trigger(store, runs)
    t.maybe_start("2026-01-01T00:00:00+00:00")  # written before ids: all feedback is new
    wait_started(runs, 1)
    time.sleep(1.1)  # the next one-second slot
    t.maybe_start(None)  # the same three rows: covered by the first trigger
    time.sleep(0.3)
    assert len(runs.started) == 1
    fill(store, 3, start=3)
    t.maybe_start(None)
    wait_started(runs, 2)
