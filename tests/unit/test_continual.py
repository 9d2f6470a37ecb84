"""Continual-learning experiments: stream windows, regret, traffic share, removed-LLM counts,
and the exploration experiment on a tiny synthetic task (hash encoder)."""

from __future__ import annotations

import numpy as np
import pytest
from _routing import fast_config, make_task, price_table

from mixllm.routing.router import MixLLMRouter
from mixllm.tools.continual import (
    EvalPoint,
    arrival_order,
    clone,
    drop_llms,
    evaluate_at_budget,
    feedback_kwargs,
    removed_choices,
    rows_of,
    run_stream,
    share_by_window,
    step_regret,
    window_bounds,
    window_means,
)

pytestmark = pytest.mark.timeout(60)


# ------------------------------------------------------------------ pure bookkeeping


@pytest.mark.parametrize(("n", "k"), [(10, 3), (7, 7), (100, 10), (5, 9), (1, 1)])
def test_windows_cover_the_stream_contiguously_without_empty_ones(n, k):
    w = window_bounds(n, k)
    assert w[0][0] == 0 and w[-1][1] == n
    assert all(a < b for a, b in w)
    assert all(w[i][1] == w[i + 1][0] for i in range(len(w) - 1))
    sizes = [b - a for a, b in w]
    assert len(w) == min(n, k) and max(sizes) - min(sizes) <= 1


def test_window_edge_cases():
    assert window_bounds(0, 4) == []
    with pytest.raises(ValueError, match="n_windows"):
        window_bounds(10, 0)


def test_window_means_average_each_window():
    w = window_bounds(6, 3)
    np.testing.assert_allclose(window_means(np.arange(6.0), w), [0.5, 2.5, 4.5])


def test_arrival_order_is_a_seeded_permutation():
    a = arrival_order(50, seed=3)
    assert sorted(a) == list(range(50))
    assert (a == arrival_order(50, seed=3)).all() and (a != arrival_order(50, seed=4)).any()


def test_regret_is_best_available_reward_minus_obtained():
    quality = np.array([[1.0, 0.0, np.nan], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    cost = np.array([[0.5, 0.1, 0.0], [0.1, 0.2, 0.1], [0.0, 0.0, 0.0]])
    lam = np.array([1.0, 1.0, 0.0])
    # step 0: rewards 0.5, -0.1 (third LLM not available) -> chose 1: regret 0.6
    # step 1: rewards -0.1, 0.8, 0.9 -> chose 1: regret 0.1
    # step 2: lambda 0: rewards 1, 1, 0 -> chose 0: regret 0
    regret = step_regret(quality, cost, np.array([1, 1, 0]), lam)
    np.testing.assert_allclose(regret, [0.6, 0.1, 0.0])


def test_regret_of_the_per_query_best_choice_is_zero():
    rng = np.random.default_rng(0)
    q, c = rng.random((20, 4)), rng.random((20, 4)) * 0.01
    lam = np.full(20, 30.0)
    best = np.argmax(q - lam[:, None] * c, axis=1)
    assert np.all(step_regret(q, c, best, lam) == 0)
    assert np.all(step_regret(q, c, (best + 1) % 4, lam) > 0)


def test_share_by_window_counts_the_llm_in_each_window():
    chosen = ["a", "b", "b", "a", "b", "b"]
    np.testing.assert_allclose(share_by_window(chosen, "b", window_bounds(6, 2)), [2 / 3, 2 / 3])
    np.testing.assert_allclose(share_by_window(chosen, "a", [(0, 1), (1, 3)]), [1.0, 0.0])


def test_removed_choices_split_at_the_removal_step():
    chosen = ["x", "y", "x", "y", "y", "x"]
    counts = removed_choices(chosen, {"x": 3, "y": 6})
    assert counts["x"] == {"before": 2, "after": 1, "steps_after": 3}
    assert counts["y"] == {"before": 3, "after": 0, "steps_after": 0}


def test_feedback_kwargs_per_mode():
    assert feedback_kwargs("none", 1.0, 0.1) is None
    assert feedback_kwargs("graded", 0.7, 0.1) == {"quality": 0.7, "cost": 0.1}
    assert feedback_kwargs("binary", 0.7, 0.1) == {"thumbs_up": True, "cost": 0.1}
    assert feedback_kwargs("binary", 0.2, 0.1)["thumbs_up"] is False
    assert feedback_kwargs("graded", float("nan"), 0.1) is None  # unobserved: no feedback


def test_drop_llms_and_rows_of(make_routing_data):
    data = make_routing_data(n=10, llms=("a", "b", "c"))
    dropped = drop_llms(data, ["b"])
    assert dropped.llms == ["a", "c"]
    np.testing.assert_array_equal(dropped.quality, data.quality[:, [0, 2]])
    x = rows_of(data, ["task-x"])
    assert len(x) == 5 and set(x.queries["source"]) == {"task-x"}
    assert len(rows_of(data, ["task-x"], keep=False)) == 5


class _Always:
    """A stand-in router that routes every query to one LLM."""

    def __init__(self, llm: str, llms: list[str]):
        self.llm, self.llms_ = llm, llms

    def route_batch(self, queries, candidates=None, **budget):
        from types import SimpleNamespace

        assert self.llm in candidates
        return [SimpleNamespace(llm=self.llm) for _ in range(len(queries))]


def test_evaluate_at_budget_is_relative_to_the_reference(make_routing_data):
    data = make_routing_data(n=12, llms=("a", "b", "c"))
    ref = evaluate_at_budget(_Always("c", ["a", "b", "c"]), data, "c", {"budget_pct": 25})
    assert ref.quality_pct == pytest.approx(100) and ref.cost_pct == pytest.approx(100)
    assert ref.shares == {"c": 1.0}
    a = evaluate_at_budget(_Always("a", ["a", "b", "c"]), data, "c", {"budget_pct": 25})
    expect = 100 * data.quality[:, 0].mean() / data.quality[:, 2].mean()
    assert a.quality_pct == pytest.approx(expect)


# ---------------------------------------------------------------- streams on a router


@pytest.fixture(scope="module")
def fitted():
    return MixLLMRouter(fast_config(), prices=price_table()).fit(make_task(240, seed=0))


def test_stream_records_choices_feedback_and_evaluations(fitted):
    stream, test = make_task(60, seed=1), make_task(60, seed=2)
    router = clone(fitted)
    trace = run_stream(
        router,
        stream,
        label="g",
        mode="graded",
        budget={"budget_pct": 20},
        test=test,
        reference="premium",
        eval_at=[0, 30, 60],
    )
    assert len(trace.chosen) == 60 and trace.regret.shape == (60,)
    assert [e.n_feedback for e in trace.evals] == [0, 30, 60]
    assert all(isinstance(e, EvalPoint) and e.quality_pct > 0 for e in trace.evals)
    assert np.all(np.diff(trace.cum_regret) >= 0)
    # graded feedback reached the router: its bandit state moved, the original's did not
    assert (
        router.store.read().bandit.n_updates.sum() == 60
        and fitted.store.read().bandit.n_updates.sum() == 0
    )


def test_no_feedback_leaves_the_router_unchanged(fitted):
    router = clone(fitted)
    run_stream(router, make_task(30, seed=1), label="n", mode="none", budget={"budget_pct": 20})
    assert router.store.read().bandit.n_updates.sum() == 0


def test_removed_llm_is_never_chosen_after_its_removal_step(fitted):
    stream = make_task(80, seed=3)
    trace = run_stream(
        clone(fitted),
        stream,
        label="r",
        mode="graded",
        budget={"budget_pct": 20},
        events={40: ("remove", lambda r: r.remove_llm("cheap-coder"))},
    )
    counts = removed_choices(trace.chosen, {"cheap-coder": 40})["cheap-coder"]
    assert counts["before"] > 0  # it was in use, so the zero below means something
    assert counts["after"] == 0 and counts["steps_after"] == 40
    assert trace.events == {40: "remove"}


# ------------------------------------------------------------- the exploration bonus


def _newcomer_share(alpha: float) -> tuple[float, float]:
    """Share of code queries routed to a better LLM added at step 0, and total regret.

    "cheap-coder" (0.9 on code, cheap) is left out of training and added with a pessimistic
    prior (0.02, far below cheap-reader's 0.2 on code), so only the exploration bonus can make
    the router try it.
    """
    train = drop_llms(make_task(240, seed=0), ["cheap-coder"])
    stream = rows_of(make_task(300, seed=1), ["code"])
    router = MixLLMRouter(fast_config(bandit={"alpha": alpha}), prices=price_table()).fit(train)

    def add(r):
        r.add_llm("cheap-coder", input_price=1e-7, output_price=2e-7, prior_quality=0.02)

    trace = run_stream(
        router,
        stream,
        label=f"alpha {alpha}",
        mode="graded",
        budget={"budget_pct": 20},
        events={0: ("add", add)},
    )
    half = trace.chosen[len(trace.chosen) // 2 :]
    return float(np.mean([c == "cheap-coder" for c in half])), float(trace.cum_regret[-1])


@pytest.mark.slow
def test_better_new_llm_is_found_with_the_bonus_and_not_without():
    share_bonus, regret_bonus = _newcomer_share(alpha=0.5)
    share_none, regret_none = _newcomer_share(alpha=0.0)
    assert share_bonus > 0.5  # found, and kept once its feedback came in
    assert share_none == 0.0  # never tried: its prior says it is worse than what is known
    assert regret_bonus < 0.5 * regret_none


# ---------------------------------------------------------------- the whole section


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_section_runs_end_to_end_on_synthetic_data(tmp_path):
    from mixllm.tools.continual_experiments import ContinualSize, run_continual
    from mixllm.tools.continual_plots import plot_new_llm, plot_offline_online, plot_ood
    from mixllm.tools.continual_report import SECTION, render_continual
    from mixllm.tools.sections import upsert_section

    prices = tmp_path / "prices.yaml"
    price_table().save(prices)
    cfg = fast_config().model_copy(update={"prices_path": str(prices)})
    size = ContinualSize(n_windows=3, checkpoints=(20, 40), max_stream=60, extra_alphas=())
    # a second dataset stands in for MESS+ (same LLM names: deploy_on adds none, removes none)
    res = run_continual(make_task(300, seed=0), cfg, size, messplus=make_task(150, seed=5))
    assert set(res.offline_online.traces) == {"graded", "binary", "none"}
    assert res.removal.counts["after"] == 0 and res.removal.held_out_after == 0
    names = [r.name.split(": ")[-1] for r in res.ood]
    assert names[:3] == ["code", "pronoun", "science"] and names[3].startswith("MESS+")
    assert len(res.ood) == 5 and res.messplus_info["n_test"] > 0
    plots = {
        "offline_online": plot_offline_online(
            tmp_path / "a.png", res.offline_online, res.setup.reference
        ).name,
        "new_llm": plot_new_llm(tmp_path / "b.png", res.new_llm).name,
        "ood": plot_ood(tmp_path / "c.png", res.ood, size.checkpoints).name,
    }
    assert all((tmp_path / p).stat().st_size > 1000 for p in plots.values())
    text = render_continual(res, plots, seconds=1.0)
    assert "held-out shares at the end" in text
    for heading in ("1. Offline -> online", "2. A new LLM", "3. Out of domain", "4. A removed"):
        assert heading in text
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# MixLLM benchmarks\n\nkept text\n")
    upsert_section(out, SECTION, text)
    upsert_section(out, SECTION, text)  # idempotent: replaced, not appended twice
    body = out.read_text()
    assert "kept text" in body and body.count("## Continual learning") == 1


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_benchmark_only_continual_rewrites_just_that_section(tmp_path):
    from test_cli import write_routerbench
    from typer.testing import CliRunner

    from mixllm.tools.cli import app

    price_table().save(tmp_path / "prices.yaml")
    cfg = fast_config().model_copy(update={"prices_path": str(tmp_path / "prices.yaml")})
    cfg.to_yaml(tmp_path / "config.yaml")
    data = write_routerbench(tmp_path / "bench.csv")
    out = tmp_path / "docs" / "BENCHMARKS.md"
    out.parent.mkdir()
    out.write_text("# MixLLM benchmarks\n\nthe main tables\n")
    args = [
        "benchmark",
        "--only",
        "continual",
        "--continual-size",
        "quick",
        "--data",
        str(data),
        "--out",
        str(out),
        "--config",
        str(tmp_path / "config.yaml"),
        "--messplus",
        str(tmp_path / "absent.csv"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "the main tables" in text and "<!-- continual:start -->" in text
    assert "MESS+ file not found" in text
    for png in ("continual_offline_online.png", "continual_new_llm.png", "continual_ood.png"):
        assert (out.parent / png).exists()
    bad = CliRunner().invoke(app, ["benchmark", "--only", "everything", "--out", str(out)])
    assert bad.exit_code == 2 and "--only" in bad.output
