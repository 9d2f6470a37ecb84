"""RouteLLM's SW ranking generalised to N LLMs: battles and the Bradley-Terry fit."""

from __future__ import annotations

import numpy as np
import pytest

from mixllm.evaluation.peers import (
    SWRankingRouter,
    battle_wins,
    bradley_terry,
    mean_win_probability,
)


@pytest.mark.timeout(30)
def test_battles_count_ties_half_and_skip_unseen():
    w = battle_wins(np.array([[1.0, 0.0, np.nan], [1.0, 1.0, 0.0]]))
    assert w[0, 0, 1] == 1 and w[0, 1, 0] == 0
    assert w[1, 0, 1] == 0.5 and w[1, 1, 0] == 0.5
    assert w[0, 0, 2] == 0 and w[0, 2, 0] == 0  # unseen: no battle


@pytest.mark.timeout(30)
def test_bradley_terry_recovers_the_win_ratio():
    wins = np.array([[[0.0, 30.0], [10.0, 0.0]]])
    p = bradley_terry(wins)
    assert p[0, 0] / p[0, 1] == pytest.approx(3.0, rel=0.01)
    assert mean_win_probability(p)[0, 0] == pytest.approx(0.75, abs=0.01)


@pytest.mark.timeout(30)
def test_similar_training_queries_decide_the_ranking():
    # LLM 0 wins near e0, LLM 1 wins near e1
    X = np.array([[1.0, 0.0]] * 20 + [[0.0, 1.0]] * 20)
    q = np.array([[1.0, 0.0]] * 20 + [[0.0, 1.0]] * 20)
    pred = SWRankingRouter().fit_quality(X, q).predict_quality(np.array([[1.0, 0.1], [0.1, 1.0]]))
    assert pred[0, 0] > pred[0, 1] and pred[1, 1] > pred[1, 0]
