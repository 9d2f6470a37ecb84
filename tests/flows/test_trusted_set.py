"""The trusted evaluation set and the gate's data checks, without running a flow: a split
that adding feedback does not move, a set that round-trips exactly and refuses tampering,
contradiction counting, and the cost criterion of the gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixllm.core.config import MixLLMConfig
from mixllm.core.errors import RegistryError
from mixllm.data.loaders import load_routerbench
from mixllm.data.long_format import long_from_frame
from mixllm.registry import evalset
from mixllm.registry.gate import (
    CHALLENGER,
    GateDecision,
    GateScores,
    check_data,
    decide,
)
from mixllm.registry.publish import training_run
from mixllm.registry.stores import MODEL_NAME
from mixllm.registry.versions import register

pytestmark = [pytest.mark.flow, pytest.mark.timeout(300)]

CHAMP = GateScores(aiq=0.80, quality=0.90, cost=1.0e-4, budget_usd=2e-4)


@pytest.fixture(scope="module")
def data(tiny_data: Path):
    return load_routerbench(tiny_data)


def feedback_on(data, n: int = 40):
    """``n`` feedback rows (long format) on the data's first queries."""
    rows = pd.DataFrame(
        {
            "query": data.queries["query"].head(n),
            "llm": data.llms[0],
            "quality": 1.0,
            "cost": 1e-4,
            "source": "feedback",
        }
    )
    return long_from_frame(rows, source="feedback")


def held_out_ids(part) -> set[str]:
    return set(part.queries["sample_id"].astype(str))


def test_adding_a_feedback_source_does_not_move_any_row(data) -> None:
    from flows.training_tasks import validate_task

    config = MixLLMConfig()
    _, test, trusted = validate_task.fn(data, config, None)
    _, test_fb, trusted_fb = validate_task.fn(data.concat(feedback_on(data)), config, None)
    base = held_out_ids(data)
    assert held_out_ids(test_fb) & base == held_out_ids(test)
    assert trusted_fb.fingerprint == trusted.fingerprint  # feedback is never trusted


def test_the_split_is_a_hash_of_each_id_alone() -> None:
    ids = [f"q{i}" for i in range(2000)]
    mask = evalset.held_out_mask(ids, 0.3)
    assert 0.25 < mask.mean() < 0.35
    assert (evalset.held_out_mask(ids[::-1], 0.3)[::-1] == mask).all()
    assert (evalset.held_out_mask(ids[:100], 0.3) == mask[:100]).all()


def test_training_rows_never_include_a_trusted_query(data) -> None:
    train, _, trusted = evalset.split_for_training(data, 0.3, None, "feedback")
    twin = data.concat(feedback_on(data, n=len(data)))  # same texts, other sample ids
    train_twin, _, _ = evalset.split_for_training(twin, 0.3, trusted, "feedback")
    texts = set(trusted.data.queries["query"])
    assert not texts & set(train.queries["query"])
    assert not texts & set(train_twin.queries["query"])


def test_contradictions_count_rows_repeating_a_trusted_query(data) -> None:
    _, _, trusted = evalset.split_for_training(data, 0.3, None, "feedback")
    assert evalset.contradictions(data, trusted.data) == (len(trusted.data), 0)
    flipped = data.subset(np.arange(len(data)))
    flipped.quality = 1.0 - flipped.quality
    assert evalset.contradictions(flipped, trusted.data) == (len(trusted.data),) * 2
    assert check_data(100, 5, 0.05) is None
    assert check_data(4, 2, 0.05) is None  # two disagreeing users are not poisoning
    assert check_data(4, 3, 0.05) is not None
    assert "contradicts the trusted evaluation set on 6 of the 100" in check_data(100, 6, 0.05)


def test_paying_more_for_the_same_quality_is_worse() -> None:
    costly = GateScores(aiq=0.80, quality=0.90, cost=1.3e-4, budget_usd=2e-4)
    decision = decide(costly, CHAMP, "1")
    assert decision.alias == CHALLENGER and "cost at budget" in decision.reason


def test_spend_far_under_budget_is_retraining_noise() -> None:
    # +50 % of a spend that stays under half the budget (a saturated task) is not a regression
    cheap_champ = GateScores(aiq=0.99, quality=1.0, cost=5.8e-5, budget_usd=2.2e-4)
    retrained = GateScores(aiq=0.99, quality=1.0, cost=8.7e-5, budget_usd=2.2e-4)
    assert decide(retrained, cheap_champ, "1").alias == "champion"
    assert decide(GateScores(0.80, 0.90, 1.2e-4, 2e-4), CHAMP, "1").promoted
    better = GateScores(aiq=0.80, quality=0.95, cost=1.5e-4, budget_usd=2e-4)
    assert decide(better, CHAMP, "1").promoted  # the extra cost buys quality


def test_trusted_set_round_trips_and_refuses_tampering(mlflow_store: str, data) -> None:
    _, _, trusted = evalset.split_for_training(data, 0.3, None, "feedback")
    back = evalset.from_frame(evalset.to_frame(trusted.data))
    assert evalset.fingerprint(back) == trusted.fingerprint
    assert evalset.load_trusted("tampered") is None
    decision = GateDecision("champion", "test", CHAMP)
    with training_run(run_name="trusted") as run_id:
        evalset.log_trusted(trusted)
    tags = {**trusted.tags(run_id), evalset.TAG_FINGERPRINT: "0" * 16}
    register(Path("/nonexistent").as_uri(), decision, run_id=run_id, name="tampered", tags=tags)
    with pytest.raises(RegistryError, match="was changed"):
        evalset.load_trusted("tampered")
    assert MODEL_NAME != "tampered"
