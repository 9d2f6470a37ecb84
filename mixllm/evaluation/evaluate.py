"""Evaluate a fitted MixLLM router, its ablations and every baseline on the same test set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from mixllm.core.errors import DataError, UnknownLLMError
from mixllm.core.types import RoutingData
from mixllm.evaluation.baselines import (
    LEARNED,
    LinearCostModel,
    MLPRouter,
    TagMeanRouter,
    make_baselines,
)
from mixllm.evaluation.protocol import (
    ChoiceOutput,
    RouterOutput,
    ScoreRouterOutput,
    choices_from_llm_names,
    scores_from_predictions,
)
from mixllm.evaluation.reference_routers import OracleRouter, RandomRouter, SingleLLMRouter
from mixllm.evaluation.report import COST_PCTS, EvaluationReport
from mixllm.evaluation.scoring import evaluate_scores
from mixllm.routing.training import make_encoder


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
    router: Any, train: RoutingData, test: RoutingData, **options: Any
) -> EvaluationReport:
    """A fitted router, its ``variants`` (ablations) and every baseline, on the same test set.

    Baselines train on ``train`` with the plain (not tag-enhanced) embeddings of
    ``plain_encoder`` (default: the router's base encoder settings) and the router's tags.
    Every router is limited to the LLMs both the router and ``test`` know (and to
    ``candidates`` when given); the report's ``notes`` say so when that drops any.
    Raises ``UnknownLLMError`` when fewer than one such LLM remains or a candidate is unknown.
    ``options`` are those of ``collect_outputs`` (``variants``, ``plain_encoder``, ``seed``,
    ``progress``, ``candidates``, ``peers``).
    """
    run = collect_outputs(router, train, test, **options)
    report = evaluate_scores(
        run.test,
        run.outputs,
        reference_llm=run.reference_llm,
        tags=run.tags_test,
        calibrated=run.calibrated,
    )
    report.notes.extend(run.notes)
    return report


@dataclass
class EvaluationRun:
    """What ``evaluate_router`` scores: every router's output on the (LLM-limited) test set."""

    test: RoutingData
    outputs: dict[str, RouterOutput]
    calibrated: dict[str, ChoiceOutput]
    tags_test: list[list[str]]
    reference_llm: str | None
    notes: list[str]


def collect_outputs(
    router: Any,
    train: RoutingData,
    test: RoutingData,
    *,
    variants: Mapping[str, Any] | None = None,
    plain_encoder: Any = None,
    seed: int = 0,
    progress: bool = True,
    candidates: Sequence[str] | None = None,
    peers: Sequence[str] | None = None,
) -> EvaluationRun:
    """The outputs ``evaluate_router`` scores (same arguments), for other scorings
    (bootstrap intervals, APGR); ``peers`` limits the learned baselines (default: all)."""
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
    # every router decides with the same cost information: MixLLM's own estimate
    # (price table x predicted output tokens), aligned to the evaluated LLMs
    c_hat = scores_from_predictions(router.predict(test.queries), names).cost
    X_prompt = None
    if peers is None or "mlp_prompt" in peers:
        X_prompt = (
            encoder.encode(train.queries["prompt"].tolist(), progress=progress),
            encoder.encode(test.queries["prompt"].tolist(), progress=progress),
        )
    outputs = baseline_outputs(
        train,
        test,
        X_train,
        X_test,
        tags_train,
        tags_test,
        seed=seed,
        progress=progress,
        c_hat=c_hat,
        X_prompt=X_prompt,
        only=peers,
    )
    return EvaluationRun(
        test,
        {**outputs, **sweeps},
        calibrated,
        tags_test,
        router.reference_llm_ if router.reference_llm_ in names else None,
        notes,
    )


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


def baseline_outputs(
    train: RoutingData,
    test: RoutingData,
    X_train: np.ndarray,
    X_test: np.ndarray,
    tags_train: Sequence[Sequence[str]] | None = None,
    tags_test: Sequence[Sequence[str]] | None = None,
    seed: int = 0,
    progress: bool = True,
    c_hat: np.ndarray | None = None,
    X_prompt: tuple[np.ndarray, np.ndarray] | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, RouterOutput]:
    """Fit every baseline on ``train`` only and return its output on ``test``.

    Learned baselines decide with the cost estimate ``c_hat`` (n_test, k) $ (give them the
    one the compared router uses); without it, ``LinearCostModel``'s. ``tag_mean`` is
    skipped when no tags are given. ``X_prompt`` (train, test features of the RAW prompt)
    adds ``mlp_prompt``, RouterBench's MLP on what RouterBench embeds. Keys: ``knn, mlp,
    svm, mf, tag_mean, sw_ranking, optllm, oracle, random`` (+ ``mlp_prompt``) + LLMs.
    """
    if list(train.llms) != list(test.llms):
        raise DataError("train and test must have the same LLM columns in the same order")
    if len(X_train) != len(train) or len(X_test) != len(test):
        raise DataError("feature rows must match the train/test queries")
    if c_hat is None:
        cost_model = LinearCostModel().fit(train.queries["prompt_tokens"].to_numpy(), train.cost)
        c_hat = cost_model.predict(test.queries["prompt_tokens"].to_numpy())
    baselines = make_baselines(seed, test.llms)
    if tags_train is None or tags_test is None:
        baselines.pop("tag_mean")
    if only is not None:  # learned baselines limited to ``only``; fixed ones always kept
        baselines = {k: v for k, v in baselines.items() if k not in LEARNED or k in only}
    outputs: dict[str, RouterOutput] = {}
    for name, model in tqdm(baselines.items(), desc="baselines", disable=not progress):
        outputs[name] = _baseline_output(
            name, model, train, test, (X_train, X_test), (tags_train, tags_test), c_hat
        )
    if X_prompt is not None:
        mlp = MLPRouter(seed=seed).fit(X_prompt[0], train.quality, train.cost)
        outputs["mlp_prompt"] = ScoreRouterOutput(mlp.predict_quality(X_prompt[1]), c_hat)
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
