"""AIQ conventions, bootstrap intervals and APGR on small hand-made outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from mixllm.evaluation import metrics
from mixllm.evaluation.intervals import (
    Picked,
    bootstrap,
    paired_difference,
    scores,
)
from mixllm.evaluation.protocol import ChoiceOutput


def _task(n=200, seed=0):
    """Two LLMs (cheap 0 / dear 1) on two tasks with different prices and skills."""
    rng = np.random.default_rng(seed)
    tasks = np.array(["a"] * (n // 2) + ["b"] * (n // 2))
    quality = np.column_stack([rng.random(n) < 0.5, rng.random(n) < 0.9]).astype(float)
    cost = np.where(tasks[:, None] == "a", [[1.0, 2.0]], [[1.0, 10.0]])
    return tasks, quality, cost


@pytest.mark.timeout(30)
def test_per_task_aiq_is_the_mean_of_each_tasks_aiq():
    tasks, quality, cost = _task()
    choices = np.vstack([np.zeros(len(tasks), int), np.ones(len(tasks), int)])
    groups = [np.flatnonzero(tasks == t) for t in ("a", "b")]
    got = scores(Picked.of(choices, quality, cost), quality, cost, groups, ref_j=1)
    expected = []
    for g in groups:
        pts = np.array([metrics.operating_point(c[g], quality[g], cost[g]) for c in choices])
        expected.append(metrics.aiq(pts, cost[g].mean(0).min(), cost[g].mean(0).max()))
    assert got["aiq_per_task"] == pytest.approx(np.mean(expected))
    pooled_pts = np.array([metrics.operating_point(c, quality, cost) for c in choices])
    assert got["aiq_pooled"] == pytest.approx(metrics.aiq(pooled_pts, 1.0, 6.0))


@pytest.mark.timeout(60)
def test_bootstrap_brackets_the_estimate_and_separates_a_real_lead():
    tasks, quality, cost = _task()
    best = np.argmax(quality - 1e-3 * cost, axis=1)  # oracle-like: a real lead
    outputs = {
        "good": ChoiceOutput(np.vstack([best, np.zeros_like(best)])),
        "plain": ChoiceOutput(np.vstack([np.ones_like(best), np.zeros_like(best)])),
    }
    ints, reps = bootstrap(outputs, quality, cost, tasks, ref_j=1, n_boot=100)
    for name in outputs:
        iv = ints[name]["aiq_pooled"]
        assert iv.lo <= iv.value <= iv.hi and iv.hi > iv.lo
    assert paired_difference(reps, "good", "plain", "aiq_pooled").lo > 0


@pytest.mark.timeout(30)
def test_apgr_scores_the_straight_line_one_half():
    weak, strong = (1.0, 0.5), (3.0, 0.9)
    assert metrics.apgr(np.array([weak, strong]), weak, strong) == pytest.approx(0.5)
    assert metrics.apgr(np.array([weak]), weak, strong) == pytest.approx(0.0)
    assert metrics.apgr(np.array([(1.0, 0.9)]), weak, strong) == pytest.approx(1.0)
