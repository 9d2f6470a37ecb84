"""evaluate_scores / baseline_outputs / EvaluationReport on a synthetic routing task."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from _synth import LLMS, Synth, make_synth, split
from threadpoolctl import threadpool_limits

from mixllm.core.errors import DataError, UnknownLLMError
from mixllm.core.types import RoutingData
from mixllm.evaluation import baselines, metrics
from mixllm.evaluation.evaluate import baseline_outputs, router_outputs, run_routers
from mixllm.evaluation.protocol import (
    ChoiceOutput,
    Features,
    ScoreRouterOutput,
    choices_from_llm_names,
)
from mixllm.evaluation.report import EvaluationReport
from mixllm.evaluation.scoring import evaluate_scores
from mixllm.routing.outputs import Predictions


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def task() -> tuple[Synth, Synth]:
    return split(make_synth(n=300, seed=2), 200)


@pytest.fixture(scope="module")
def outputs(task) -> dict:
    train, test = task
    return baseline_outputs(
        train.data, test.data, train.X, test.X, train.tags, test.tags, seed=0, progress=False
    )


@pytest.fixture(scope="module")
def report(task, outputs) -> EvaluationReport:
    _, test = task
    knn_cal = metrics.choose(outputs["knn"].quality, outputs["knn"].cost, 0.0)
    return evaluate_scores(
        test.data,
        outputs,
        tags=test.tags,
        calibrated={"knn": knn_cal, "knn@cheap": np.zeros(len(test.X), dtype=int)},
    )


def test_baseline_outputs_keys_and_kinds(outputs) -> None:
    assert set(outputs) == {*baselines.LEARNED, "oracle", "random", *LLMS}
    for name in baselines.LEARNED:
        assert isinstance(outputs[name], ScoreRouterOutput)
    assert outputs["oracle"].kind == "oracle" and outputs["random"].kind == "random"
    assert all(outputs[llm].kind == "single" for llm in LLMS)


def test_baseline_outputs_train_on_train_only(task, outputs) -> None:
    train, test = task
    # Scrambled test outcomes must not change what the learned baselines predict.
    rng = np.random.default_rng(0)
    scrambled = test.data.subset(np.arange(len(test.X)))
    scrambled.quality = rng.permutation(scrambled.quality)
    again = baseline_outputs(
        train.data, scrambled, train.X, test.X, train.tags, test.tags, progress=False
    )
    for name in baselines.LEARNED:
        assert np.allclose(again[name].quality, outputs[name].quality)
        assert np.allclose(again[name].cost, outputs[name].cost)


def test_baseline_outputs_without_tags_skips_tag_mean(task) -> None:
    train, test = task
    out = baseline_outputs(train.data, test.data, train.X, test.X, progress=False)
    assert "tag_mean" not in out and "knn" in out


def test_json_shape_is_exact_and_round_trips(report) -> None:
    js = report.to_json()
    assert set(js) == {"reference_llm", "notes", "n_queries", "cost_range", "routers"}
    assert isinstance(js["reference_llm"], str) and type(js["n_queries"]) is int
    assert len(js["cost_range"]) == 2 and all(type(x) is float for x in js["cost_range"])
    keys = {"aiq", "quality_pct_at_cost_pct", "mean_quality", "mean_cost", "quality_pct"}
    for r in js["routers"].values():
        assert set(r) == {*keys, "cost_pct"}
        assert set(r["quality_pct_at_cost_pct"]) == {"10", "25", "50"}
        for v in [
            r["aiq"],
            r["mean_quality"],
            r["mean_cost"],
            *r["quality_pct_at_cost_pct"].values(),
        ]:
            assert v is None or type(v) is float
    assert json.loads(json.dumps(js, allow_nan=False)) == js


def test_reference_cost_range_and_single_llm_numbers(task, report) -> None:
    _, test = task
    q, c = test.data.quality.mean(axis=0), test.data.cost.mean(axis=0)
    ref = LLMS[int(np.argmax(q))]
    js = report.to_json()
    assert js["reference_llm"] == ref
    assert js["cost_range"] == pytest.approx([c.min(), c.max()])
    r = js["routers"][ref]
    assert r["quality_pct"] == pytest.approx(100) and r["cost_pct"] == pytest.approx(100)
    # The reference LLM costs 100 %: nothing of it fits under 10 % of its cost.
    assert r["quality_pct_at_cost_pct"]["10"] is None
    cheapest = LLMS[int(np.argmin(c))]
    assert js["routers"][cheapest]["aiq"] == pytest.approx(q[np.argmin(c)])


def test_learned_routers_beat_random_and_oracle_is_best(report) -> None:
    js = report.to_json()["routers"]
    for name in baselines.LEARNED:
        assert js[name]["aiq"] > js["random"]["aiq"] + 0.1, name
    oracle_q = js["oracle"]["mean_quality"]
    assert all(oracle_q >= r["mean_quality"] - 1e-12 for r in js.values())
    assert report.ranked()[0] == "oracle"


def test_reported_operating_points(task, outputs, report) -> None:
    _, test = task
    q_hat, c_hat = outputs["knn"].quality, outputs["knn"].cost
    cal = metrics.operating_point(
        metrics.choose(q_hat, c_hat, 0.0), test.data.quality, test.data.cost
    )
    assert report.routers["knn"].operating_point == "calibrated"
    assert (report.routers["knn"].mean_cost, report.routers["knn"].mean_quality) == pytest.approx(
        cal
    )
    assert set(report.calibrated) == {"knn", "knn@cheap"}
    assert report.calibrated["knn@cheap"] == pytest.approx(
        (test.data.cost[:, 0].mean(), test.data.quality[:, 0].mean())
    )
    # A sweep without calibration: its best point at <= 25 % of the reference cost.
    mf = report.routers["mf"]
    budget = 0.25 * report.reference_cost
    under = mf.points[mf.points[:, 0] <= budget]
    assert mf.mean_cost <= budget
    assert mf.mean_cost == pytest.approx(under[:, 0].max())


def test_per_tag_breakdown(task, report) -> None:
    _, test = task
    assert set(report.per_tag) == {t for tags in test.tags for t in tags}
    rows = np.array([i for i, tags in enumerate(test.tags) if "topic:0" in tags])
    assert report.tag_counts["topic:0"] == len(rows)
    q_oracle, _ = report.per_tag["topic:0"]["oracle"]
    assert q_oracle == pytest.approx(test.data.quality[rows].max(axis=1).mean())
    q_tiny, c_tiny = report.per_tag["topic:0"]["tiny"]
    assert (q_tiny, c_tiny) == pytest.approx(
        (test.data.quality[rows, 0].mean(), test.data.cost[rows, 0].mean())
    )


def test_markdown_lists_every_router_and_tag(report) -> None:
    md = report.to_markdown()
    for name in report.routers:
        assert f"| {name} |" in md
    for tag in report.per_tag:
        assert f"| {tag} |" in md
    assert "knn@cheap" in md
    # Sorted by AIQ: the oracle is ranked first.
    assert md.index("| 1 | oracle |") > 0


def test_plot_writes_png(report, tmp_path) -> None:
    path = report.plot_pareto(tmp_path / "sub" / "pareto.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_predictions_are_aligned_by_llm_name(task, outputs) -> None:
    _, test = task
    knn = outputs["knn"]
    perm = [2, 0, 3, 1]
    zeros = np.zeros_like(knn.quality)
    preds = Predictions(
        [LLMS[j] for j in perm], knn.quality[:, perm], knn.cost[:, perm], zeros, zeros, []
    )
    rep = evaluate_scores(test.data, {"as_preds": preds, "knn": knn})
    assert np.allclose(rep.routers["as_preds"].points, rep.routers["knn"].points)


def test_bad_inputs_raise(task, outputs) -> None:
    _, test = task
    with pytest.raises(DataError):
        evaluate_scores(test.data, {"x": ScoreRouterOutput(np.zeros((3, 4)), np.zeros((3, 4)))})
    with pytest.raises(DataError):
        evaluate_scores(test.data, {"x": ChoiceOutput(np.full(len(test.X), 9))})
    with pytest.raises(UnknownLLMError):
        choices_from_llm_names(["gpt-9"], LLMS)
    with pytest.raises(DataError):
        evaluate_scores(test.data, {"oracle": outputs["oracle"]}, tags=[["a"]])
    with pytest.raises(DataError):
        evaluate_scores(test.data, {"knn": outputs["knn"]}, calibrated={"knn": [0, 1]})


def test_import_has_no_side_effects() -> None:
    code = (
        "import sys, mixllm.evaluation.evaluate, mixllm.evaluation.plots, "
        "mixllm.evaluation.baselines, mixllm.evaluation.metrics; "
        "print('matplotlib' in sys.modules, 'torch' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "False"]


@dataclass
class _Decision:
    llm: str


class _BudgetKNNRouter:
    """A small real router with MixLLM's predict/route_batch surface, over KNN + price lines."""

    def __init__(self, train: Synth, test: Synth) -> None:
        self.knn = baselines.KNNRouter().fit_quality(train.X, train.data.quality)
        tokens = train.data.queries["prompt_tokens"].to_numpy()
        self.cost = baselines.LinearCostModel().fit(tokens, train.data.cost)
        self.rows = {t: i for i, t in enumerate(test.data.queries["query"])}
        self.test = test

    def predict(self, queries: pd.DataFrame) -> Predictions:
        idx = [self.rows[t] for t in queries["query"]]
        q = self.knn.predict_quality(self.test.X[idx])
        c = self.cost.predict(queries["prompt_tokens"].to_numpy())
        return Predictions(LLMS, q, c, np.full_like(q, 0.1), np.zeros_like(q), [[] for _ in idx])

    def route_batch(self, queries: pd.DataFrame, budget_pct: float = 25.0) -> list[_Decision]:
        p = self.predict(queries)
        budget = budget_pct / 100 * p.cost[:, -1].mean()
        lams = metrics.lambda_grid(p.cost, 40)
        ch = metrics.choose(p.quality, p.cost, lams)
        spent = p.cost[np.arange(len(queries))[None, :], ch].mean(axis=1)
        pick = ch[int(np.argmax(spent <= budget))]
        return [_Decision(LLMS[j]) for j in pick]


def test_router_outputs_sweep_and_calibrated_points(task) -> None:
    train, test = task
    router = _BudgetKNNRouter(train, test)
    sweep_out, cal = router_outputs(router, test.data, budget_pcts=(10, 50), uncertainty_weight=0.5)
    assert set(sweep_out) == {"mixllm"} and set(cal) == {"mixllm", "mixllm@10%", "mixllm@50%"}
    assert np.allclose(sweep_out["mixllm"].bonus, 0.05)
    rep = evaluate_scores(test.data, sweep_out, calibrated=cal)
    assert rep.routers["mixllm"].operating_point == "calibrated"
    assert rep.calibrated["mixllm@10%"][0] <= rep.calibrated["mixllm@50%"][0]


@pytest.mark.timeout(120)
def test_baseline_outputs_limited_to_some_peers(task) -> None:
    train, test = task
    out = baseline_outputs(
        train.data, test.data, train.X, test.X, train.tags, test.tags, progress=False, only=["knn"]
    )
    assert set(out) == {"knn", "oracle", "random", *LLMS}


class _TrainingMeanRouter:
    """A router evaluation has never heard of: every query gets the training means."""

    name, inputs = "train_mean", None

    def fit(self, train: RoutingData, features: Features) -> _TrainingMeanRouter:
        self.mean = np.nanmean(train.quality, axis=0)
        return self

    def output(self, test: RoutingData, features: Features) -> ScoreRouterOutput:
        cheapest = ChoiceOutput(np.argmin(features.cost, axis=1))
        q = np.tile(self.mean, (len(test), 1))
        return ScoreRouterOutput(q, features.cost, points={"@cheap": cheapest})


class _PromptRouter(_TrainingMeanRouter):
    name, inputs = "needs_prompts", "prompt_embeddings"


@pytest.mark.timeout(30)
def test_evaluation_runs_any_router_through_the_protocol(task) -> None:
    train, test = task
    c_hat = np.tile(np.nanmean(test.data.cost, axis=0), (len(test.X), 1))
    outputs, points = run_routers(
        {"mean": _TrainingMeanRouter(), "prompted": _PromptRouter()},
        train.data,
        test.data,
        Features(train.X),
        Features(test.X, cost=c_hat),
        progress=False,
    )
    assert set(outputs) == {"mean"}  # its input absent: the prompt router is left out
    assert np.allclose(outputs["mean"].quality[0], np.nanmean(train.data.quality, axis=0))
    assert set(points) == {"mean@cheap"}
    assert np.array_equal(points["mean@cheap"].choices, np.argmin(c_hat, axis=1))
