"""Evaluate routers on held-out data: curves, AIQ, quality at cost, per-tag breakdown.

Every router is reduced to one of two shapes before scoring, so MixLLM and the baselines
go through the same code:

- ``ScoreRouterOutput``: predicted quality/cost (and an optional bonus) per query and
  LLM; the router's curve is the lambda sweep of ``argmax(q + bonus - lambda * c)``.
- ``ChoiceOutput``: the LLM actually picked per query (one operating point, or several
  rows of choices for several points), e.g. the oracle or MixLLM's calibrated decisions.

Points are always scored with the RECORDED quality and cost of the chosen LLMs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mixllm.core.errors import DataError, UnknownLLMError
from mixllm.core.types import RoutingData
from mixllm.evaluation import metrics
from mixllm.evaluation.baselines import (
    LEARNED,
    LinearCostModel,
    OracleRouter,
    RandomRouter,
    SingleLLMRouter,
    TagMeanRouter,
    make_baselines,
)
from mixllm.routing.outputs import Predictions
from mixllm.routing.training import make_encoder

COST_PCTS = (10, 25, 50)
# Without a calibrated point, a sweep router is reported at its best point under this
# budget (% of the reference LLM's cost): MixLLM's default budget_pct.
REPORT_BUDGET_PCT = 25.0


@dataclass
class ScoreRouterOutput:
    """Predicted quality/cost ``(n, k)`` aligned with the test LLMs; swept over lambdas."""

    quality: np.ndarray
    cost: np.ndarray
    bonus: np.ndarray | None = None
    lambdas: np.ndarray | None = None  # None: metrics.lambda_grid on the predicted cost


@dataclass
class ChoiceOutput:
    """Chosen LLM index per query: ``(n,)`` for one point, ``(m, n)`` for m points."""

    choices: np.ndarray
    kind: str = "choice"  # "single", "oracle", "random" or "choice": only styles the plot
    report_index: int | None = None  # row reported as the operating point (None: 25 % rule)


RouterOutput = ScoreRouterOutput | ChoiceOutput


@dataclass
class RouterResult:
    """One router's curve and summary numbers on the test set."""

    points: np.ndarray  # (m, 2): mean cost $, mean quality
    aiq: float
    quality_pct_at_cost_pct: dict[str, float]  # "10"/"25"/"50" -> % of ref quality (NaN: none)
    mean_quality: float
    mean_cost: float
    quality_pct: float
    cost_pct: float
    kind: str  # "curve" for a sweep, else the ChoiceOutput kind
    operating_point: str  # how mean_quality/mean_cost were picked
    choices: np.ndarray = field(repr=False)  # (n,) at the reported operating point


@dataclass
class EvaluationReport:
    """Per-router curves and numbers of one evaluation, with JSON/markdown/plot views.

    A router's ``mean_quality``/``mean_cost`` is its calibrated operating point when one
    was given under the router's own name, else the row a ``ChoiceOutput`` names in
    ``report_index`` (the oracle: its best-quality point), else (sweep) its best point
    with cost <= 25 % of the reference LLM's mean cost (the cheapest point if none is that
    cheap), else (one-point router) its single point. ``quality_pct``/``cost_pct`` are the
    same point in % of the reference LLM's mean quality/cost. Points, AIQ and quality at
    cost come from the router's own curve only: calibrated points never enter them.
    """

    reference_llm: str
    n_queries: int
    cost_range: tuple[float, float]
    reference_quality: float
    reference_cost: float
    routers: dict[str, RouterResult]
    calibrated: dict[str, tuple[float, float]] = field(default_factory=dict)  # (cost, quality)
    per_tag: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    tag_counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. which LLMs the routers were limited to

    def ranked(self) -> list[str]:
        """Router names by decreasing AIQ."""
        return sorted(self.routers, key=lambda r: -_finite_or(self.routers[r].aiq, -np.inf))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (plain floats, NaN -> None)."""
        routers = {
            name: {
                "aiq": _num(r.aiq),
                "quality_pct_at_cost_pct": {
                    k: _num(v) for k, v in r.quality_pct_at_cost_pct.items()
                },
                "mean_quality": _num(r.mean_quality),
                "mean_cost": _num(r.mean_cost),
                "quality_pct": _num(r.quality_pct),
                "cost_pct": _num(r.cost_pct),
            }
            for name, r in self.routers.items()
        }
        return {
            "reference_llm": self.reference_llm,
            "notes": list(self.notes),
            "n_queries": int(self.n_queries),
            "cost_range": [_num(self.cost_range[0]), _num(self.cost_range[1])],
            "routers": routers,
        }

    def to_markdown(self) -> str:
        """Markdown: routers sorted by AIQ, calibrated points, then the per-tag breakdown."""
        lines = [
            f"Reference LLM: `{self.reference_llm}` (quality {self.reference_quality:.3f}, "
            f"cost ${self.reference_cost:.6f}/query); {self.n_queries} test queries; "
            f"AIQ over ${self.cost_range[0]:.6f} to ${self.cost_range[1]:.6f}.",
            "",
            "| rank | router | AIQ | quality % | cost % | Q% @ cost<=10% | Q% @ cost<=25% "
            "| Q% @ cost<=50% | mean quality | mean cost $ | reported at |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        lines[1:1] = [f"Note: {n}" for n in self.notes] + ([""] if self.notes else [])
        for i, name in enumerate(self.ranked(), 1):
            r = self.routers[name]
            at = " | ".join(_fmt(r.quality_pct_at_cost_pct[str(p)], ".1f") for p in COST_PCTS)
            lines.append(
                f"| {i} | {name} | {_fmt(r.aiq, '.4f')} | {_fmt(r.quality_pct, '.1f')} | "
                f"{_fmt(r.cost_pct, '.1f')} | {at} | {_fmt(r.mean_quality, '.3f')} | "
                f"{_fmt(r.mean_cost, '.6f')} | {r.operating_point} |"
            )
        if self.calibrated:
            lines += ["", "Calibrated operating points:", ""]
            lines += ["| point | quality % | cost % |", "|---|---:|---:|"]
            for name, (c, q) in self.calibrated.items():
                qp, cp = self._pct(q, c)
                lines.append(f"| {name} | {_fmt(qp, '.1f')} | {_fmt(cp, '.1f')} |")
        if self.per_tag:
            lines += ["", *self._per_tag_markdown()]
        return "\n".join(lines) + "\n"

    def _pct(self, quality: float, cost: float) -> tuple[float, float]:
        return 100 * quality / self.reference_quality, 100 * cost / self.reference_cost

    def _per_tag_markdown(self) -> list[str]:
        names = self.ranked()
        out = [
            "Per tag, each router at its reported operating point: "
            "quality % (cost %) of the reference LLM on the whole test set.",
            "",
            "| tag | n | " + " | ".join(names) + " |",
            "|---|---:|" + "---:|" * len(names),
        ]
        for tag in sorted(self.per_tag):
            cells = []
            for name in names:
                q, c = self.per_tag[tag][name]
                qp, cp = self._pct(q, c)
                cells.append(f"{_fmt(qp, '.0f')} ({_fmt(cp, '.0f')})")
            out.append(f"| {tag} | {self.tag_counts[tag]} | " + " | ".join(cells) + " |")
        return out

    def plot_pareto(self, path: str | Path, title: str | None = None) -> Path:
        """PNG of every router's curve/point, cost as % of the reference LLM (log axis)."""
        from mixllm.evaluation.plots import plot_pareto

        curves, points, singles, oracle = {}, {}, {}, None
        for name, r in self.routers.items():
            here = (float(r.mean_cost), float(r.mean_quality))
            if r.kind == "curve" or len(r.points) > 1:
                curves[name] = (r.points, metrics.nondecreasing_convex_hull(r.points))
            if r.kind == "oracle":
                oracle = here
            elif r.kind == "single":
                singles[name] = here
            elif name not in curves:
                points[name] = here
        return plot_pareto(
            path,
            ref_cost=self.reference_cost,
            ref_llm=self.reference_llm,
            curves=curves,
            points=points,
            singles=singles,
            oracle=oracle,
            calibrated=self.calibrated,
            cost_pcts=COST_PCTS,
            title=title,
        )


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _finite_or(x: float, default: float) -> float:
    return x if math.isfinite(x) else default


def _fmt(x: float, spec: str) -> str:
    return format(x, spec) if x is not None and math.isfinite(x) else "-"


def scores_from_predictions(
    pred: Predictions, llms: Sequence[str], uncertainty_weight: float = 0.0
) -> ScoreRouterOutput:
    """Align a ``Predictions`` to ``llms`` (missing LLMs never win) as a sweepable output."""
    cols = {name: j for j, name in enumerate(pred.llms)}
    n = len(np.asarray(pred.quality))

    def aligned(mat: np.ndarray) -> np.ndarray:
        mat = np.asarray(mat, dtype=float)
        out = np.full((n, len(llms)), np.nan)
        for j, name in enumerate(llms):
            if name in cols:
                out[:, j] = mat[:, cols[name]]
        return out

    bonus = None
    if uncertainty_weight and pred.uncertainty is not None:
        bonus = uncertainty_weight * np.nan_to_num(aligned(pred.uncertainty))
    return ScoreRouterOutput(quality=aligned(pred.quality), cost=aligned(pred.cost), bonus=bonus)


def choices_from_llm_names(picked: Sequence[Any], llms: Sequence[str]) -> ChoiceOutput:
    """Choices from LLM names or objects with an ``.llm`` name (e.g. router Decisions)."""
    index = {name: j for j, name in enumerate(llms)}
    names = [getattr(p, "llm", p) for p in picked]
    unknown = sorted({n for n in names if n not in index})
    if unknown:
        raise UnknownLLMError(f"routed to LLMs absent from the test data: {', '.join(unknown)}")
    return ChoiceOutput(np.array([index[n] for n in names], dtype=int))


def router_outputs(
    router: Any,
    test: RoutingData,
    *,
    name: str = "mixllm",
    budget_pcts: Sequence[float] = COST_PCTS,
    uncertainty_weight: float | None = None,
    candidates: Sequence[str] | None = None,
) -> tuple[dict[str, ScoreRouterOutput], dict[str, ChoiceOutput]]:
    """MixLLM's sweep output and calibrated choices (default budget + ``budget_pcts``).

    The sweep uses ``quality + uncertainty_weight * uncertainty - lambda * cost``
    (default weight: the router's ``cfg.bandit.alpha``) without queue/latency
    penalties; the calibrated points are the router's own ``route_batch`` decisions,
    limited to ``candidates`` when given (LLMs outside them never win the sweep either).
    """
    if uncertainty_weight is None:
        uncertainty_weight = float(router.cfg.bandit.alpha)
    pred = router.predict(test.queries)
    llms = list(test.llms) if candidates is None else [m for m in test.llms if m in candidates]
    sweep_out = {name: scores_from_predictions(pred, llms, uncertainty_weight)}
    limit = {} if candidates is None else {"candidates": list(candidates)}
    # the frame carries prompt_tokens of the whole prompt: cost predictions need them
    calibrated = {name: choices_from_llm_names(router.route_batch(test.queries, **limit), llms)}
    for pct in budget_pcts:
        decisions = router.route_batch(test.queries, budget_pct=float(pct), **limit)
        calibrated[f"{name}@{pct:g}%"] = choices_from_llm_names(decisions, llms)
    return sweep_out, calibrated


def evaluate_router(
    router: Any,
    train: RoutingData,
    test: RoutingData,
    *,
    variants: Mapping[str, Any] | None = None,
    plain_encoder: Any = None,
    seed: int = 0,
    progress: bool = True,
    candidates: Sequence[str] | None = None,
) -> EvaluationReport:
    """A fitted router, its ``variants`` (ablations) and every baseline, on the same test set.

    Baselines train on ``train`` with the plain (not tag-enhanced) embeddings of
    ``plain_encoder`` (default: the router's base encoder settings) and the router's tags.
    Every router is limited to the LLMs both the router and ``test`` know (and to
    ``candidates`` when given); the report's ``notes`` say so when that drops any.
    Raises ``UnknownLLMError`` when fewer than one such LLM remains or a candidate is unknown.
    """
    names, notes = shared_llms(router.llms_, test.llms, candidates)
    limit = None if names == list(router.llms_) else names
    test, train = test.select_llms(names), train.select_llms(names)
    sweeps, calibrated = router_outputs(router, test, candidates=limit)
    for vname, variant in (variants or {}).items():
        v_sweep, v_cal = router_outputs(variant, test, name=vname, budget_pcts=(), candidates=limit)
        sweeps.update(v_sweep)
        calibrated.update(v_cal)
    encoder = plain_encoder or make_encoder(router.cfg)
    texts_train = train.queries["query"].tolist()
    texts_test = test.queries["query"].tolist()
    X_train = encoder.encode(texts_train, progress=progress)
    X_test = encoder.encode(texts_test, progress=progress)
    tags_train = router.tagger_.tag(texts_train, router.encoder_.encode(texts_train))
    tags_test = router.tagger_.tag(texts_test, router.encoder_.encode(texts_test))
    outputs = baseline_outputs(
        train, test, X_train, X_test, tags_train, tags_test, seed=seed, progress=progress
    )
    report = evaluate_scores(
        test,
        {**outputs, **sweeps},
        reference_llm=router.reference_llm_ if router.reference_llm_ in names else None,
        tags=tags_test,
        calibrated=calibrated,
    )
    report.notes.extend(notes)
    return report


def shared_llms(
    router_llms: Sequence[str], data_llms: Sequence[str], candidates: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """LLMs to evaluate on (the data's order) and notes on what was left out and why."""
    notes = []
    if candidates is not None:
        unknown = [m for m in candidates if m not in router_llms or m not in data_llms]
        if unknown:
            raise UnknownLLMError(
                f"candidate(s) {', '.join(unknown)} not both routable and in the data; "
                f"router: {', '.join(router_llms)}; data: {', '.join(data_llms)}"
            )
    names = [m for m in data_llms if m in router_llms and (candidates is None or m in candidates)]
    if len(names) < 1:
        raise UnknownLLMError(
            f"the router ({', '.join(router_llms)}) and the data ({', '.join(data_llms)}) "
            "share no LLM"
        )
    absent = [m for m in router_llms if m not in data_llms]
    if absent:
        notes.append(
            f"routers limited to the {len(names)} LLM(s) present in the data; "
            f"not in the data: {', '.join(absent)}"
        )
    if candidates is not None:
        notes.append(f"routers limited to the candidates {', '.join(names)}")
    extra = [m for m in data_llms if m not in router_llms]
    if extra:
        notes.append(f"LLMs in the data the router cannot route to: {', '.join(extra)}")
    return names, notes


def _column_nanmean(x: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(x)
    return np.where(ok, x, 0.0).sum(axis=0) / np.maximum(ok.sum(axis=0), 1)


def _pick_reference(test: RoutingData, reference_llm: str | None) -> int:
    if reference_llm is not None:
        return test.llm_index(reference_llm)
    q, c = _column_nanmean(test.quality), _column_nanmean(test.cost)
    # Highest mean quality; the cheaper LLM wins an exact tie so the choice is stable.
    return int(np.lexsort((c, -q))[0])


def _as_choice(value: Any, test: RoutingData) -> ChoiceOutput:
    """A calibrated point as one ``(n,)`` row of valid LLM indices."""
    if isinstance(value, ChoiceOutput):
        out = value
    elif np.asarray(value).dtype.kind in "iu":
        out = ChoiceOutput(np.asarray(value, dtype=int))
    else:
        out = choices_from_llm_names(list(value), test.llms)
    ch = np.asarray(out.choices)
    if ch.shape != (len(test),) or ch.min(initial=0) < 0 or ch.max(initial=0) >= len(test.llms):
        raise DataError(f"a calibrated point needs {len(test)} LLM indices, got {ch.shape}")
    return out


def _curve(out: RouterOutput, test: RoutingData) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(m, 2)`` plus what reproduces each point: its lambda, or its choice row."""
    n, k = test.quality.shape
    if isinstance(out, ScoreRouterOutput):
        if np.shape(out.quality) != (n, k) or np.shape(out.cost) != (n, k):
            raise DataError(f"router output must be {(n, k)}, got {np.shape(out.quality)}")
        lams = out.lambdas if out.lambdas is not None else metrics.lambda_grid(out.cost)
        pts = metrics.sweep(out.quality, out.cost, test.quality, test.cost, lams, out.bonus)
        return pts, np.asarray(lams)
    ch = np.atleast_2d(np.asarray(out.choices, dtype=int))
    if ch.shape[1] != n or ch.min() < 0 or ch.max() >= k:
        raise DataError(f"choices must be (m, {n}) indices in [0, {k}), got {ch.shape}")
    pts = np.array([metrics.operating_point(row, test.quality, test.cost) for row in ch])
    return pts, ch


def _report_index(points: np.ndarray, budget: float) -> int:
    """Best point with cost <= budget (nearest from below), else the cheapest point."""
    costs = np.where(np.isfinite(points[:, 0]), points[:, 0], np.inf)
    ok = costs <= budget
    if not ok.any():
        return int(np.argmin(costs))
    best_cost = costs[ok].max()
    same = np.flatnonzero(costs == best_cost)
    return int(same[np.argmax(np.nan_to_num(points[same, 1], nan=-np.inf))])


def _evaluate_one(
    out: RouterOutput,
    test: RoutingData,
    ref: tuple[float, float],
    cost_range: tuple[float, float],
    calibrated: ChoiceOutput | None,
) -> RouterResult:
    ref_q, ref_c = ref
    points, source = _curve(out, test)
    if calibrated is not None:
        choices = np.asarray(calibrated.choices, dtype=int)
        how = "calibrated"
    else:
        i = _report_index(points, REPORT_BUDGET_PCT / 100 * ref_c)
        if isinstance(out, ScoreRouterOutput):
            choices = metrics.choose(out.quality, out.cost, source[i], out.bonus)
            how = f"sweep, cost <= {REPORT_BUDGET_PCT:g}%"
        elif out.report_index is not None:
            choices = source[out.report_index]
            how = "given point"
        else:
            choices = source[i]
            how = "single point" if len(points) == 1 else f"point, cost <= {REPORT_BUDGET_PCT:g}%"
    mean_c, mean_q = metrics.operating_point(choices, test.quality, test.cost)
    at = {str(p): 100 * metrics.quality_at_cost(points, p / 100 * ref_c) / ref_q for p in COST_PCTS}
    return RouterResult(
        points=points,
        aiq=metrics.aiq(points, *cost_range),
        quality_pct_at_cost_pct=at,
        mean_quality=mean_q,
        mean_cost=mean_c,
        quality_pct=100 * mean_q / ref_q,
        cost_pct=100 * mean_c / ref_c,
        kind="curve" if isinstance(out, ScoreRouterOutput) else out.kind,
        operating_point=how,
        choices=choices,
    )


def _per_tag(
    test: RoutingData, results: Mapping[str, RouterResult], tags: Sequence[Sequence[str]]
) -> tuple[dict[str, dict[str, tuple[float, float]]], dict[str, int]]:
    if len(tags) != len(test):
        raise DataError(f"tags has {len(tags)} entries for {len(test)} test queries")
    members: dict[str, list[int]] = {}
    for i, qtags in enumerate(tags):
        for t in dict.fromkeys(qtags):
            members.setdefault(t, []).append(i)
    table = {}
    for tag, idx in members.items():
        rows = np.array(idx)
        q, c = test.quality[rows], test.cost[rows]
        # Stored as (quality, cost), the order the per-tag table reads them.
        table[tag] = {
            name: metrics.operating_point(r.choices[rows], q, c)[::-1]
            for name, r in results.items()
        }
    return table, {t: len(v) for t, v in members.items()}


def evaluate_scores(
    test: RoutingData,
    routers: Mapping[str, RouterOutput | Predictions],
    reference_llm: str | None = None,
    tags: Sequence[Sequence[str]] | None = None,
    calibrated: Mapping[str, Any] | None = None,
) -> EvaluationReport:
    """Score every router on ``test`` with its recorded outcomes (see ``EvaluationReport``).

    ``calibrated`` maps a name to per-query choices (ChoiceOutput, int indices, LLM names
    or Decisions); under a router's own name it becomes that router's reported point,
    any other name is an extra marked point (e.g. ``"mixllm@10%"``).
    """
    if not routers:
        raise ValueError("evaluate_scores needs at least one router")
    ref_j = _pick_reference(test, reference_llm)
    ref_c, ref_q = metrics.operating_point(np.full(len(test), ref_j), test.quality, test.cost)
    llm_costs = _column_nanmean(test.cost)
    cost_range = (float(llm_costs.min()), float(llm_costs.max()))
    cal = {name: _as_choice(v, test) for name, v in (calibrated or {}).items()}
    results = {}
    for name, out in routers.items():
        if not isinstance(out, ScoreRouterOutput | ChoiceOutput):
            if not isinstance(out, Predictions):
                raise TypeError(f"router {name!r}: unsupported output {type(out).__name__}")
            out = scores_from_predictions(out, test.llms)
        if isinstance(out, ChoiceOutput) and out.kind == "choice" and name in test.llms:
            out = replace(out, kind="single")
        results[name] = _evaluate_one(out, test, (ref_q, ref_c), cost_range, cal.get(name))
    per_tag, counts = _per_tag(test, results, tags) if tags is not None else ({}, {})
    return EvaluationReport(
        reference_llm=test.llms[ref_j],
        n_queries=len(test),
        cost_range=cost_range,
        reference_quality=ref_q,
        reference_cost=ref_c,
        routers=results,
        calibrated={
            name: metrics.operating_point(c.choices, test.quality, test.cost)
            for name, c in cal.items()
        },
        per_tag=per_tag,
        tag_counts=counts,
    )


def baseline_outputs(
    train: RoutingData,
    test: RoutingData,
    X_train: np.ndarray,
    X_test: np.ndarray,
    tags_train: Sequence[Sequence[str]] | None = None,
    tags_test: Sequence[Sequence[str]] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, RouterOutput]:
    """Fit every baseline on ``train`` only and return its output on ``test``.

    Learned baselines share ``LinearCostModel``'s cost estimate; ``tag_mean`` is skipped
    when no tags are given. Keys: ``knn, mlp, svm, mf, tag_mean, oracle, random`` + LLMs.
    """
    if list(train.llms) != list(test.llms):
        raise DataError("train and test must have the same LLM columns in the same order")
    if len(X_train) != len(train) or len(X_test) != len(test):
        raise DataError("feature rows must match the train/test queries")
    cost_model = LinearCostModel().fit(train.queries["prompt_tokens"].to_numpy(), train.cost)
    c_hat = cost_model.predict(test.queries["prompt_tokens"].to_numpy())
    baselines = make_baselines(seed, test.llms)
    if tags_train is None or tags_test is None:
        baselines.pop("tag_mean")
    outputs: dict[str, RouterOutput] = {}
    for name, model in tqdm(baselines.items(), desc="baselines", disable=not progress):
        outputs[name] = _baseline_output(
            name, model, train, test, (X_train, X_test), (tags_train, tags_test), c_hat
        )
    return outputs


def _baseline_output(
    name: str,
    model: Any,
    train: RoutingData,
    test: RoutingData,
    X: tuple[np.ndarray, np.ndarray],
    tags: tuple[Any, Any],
    c_hat: np.ndarray,
) -> RouterOutput:
    if isinstance(model, TagMeanRouter):
        q_hat = model.fit(tags[0], train.quality, train.cost).predict_quality(tags[1])
        return ScoreRouterOutput(quality=q_hat, cost=c_hat)
    if name in LEARNED:
        q_hat = model.fit(X[0], train.quality, train.cost).predict_quality(X[1])
        return ScoreRouterOutput(quality=q_hat, cost=c_hat)
    if isinstance(model, OracleRouter):
        # Row 0 is the classic oracle point (best quality, cheapest ties), reported as is.
        curve = model.curve_choices(test.quality, test.cost)
        return ChoiceOutput(curve, kind="oracle", report_index=0)
    if isinstance(model, RandomRouter):
        return ChoiceOutput(model.choose(len(test), len(test.llms)), kind="random")
    if isinstance(model, SingleLLMRouter):
        return ChoiceOutput(model.choose(len(test), test.llms), kind="single")
    raise TypeError(f"unknown baseline {name!r}: {type(model).__name__}")
