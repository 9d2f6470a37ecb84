"""Evaluate a fitted MixLLM router, its ablations and every baseline on the same test set.

Every router goes through the one protocol (``mixllm.evaluation.protocol.Router``): fit on
the training split, output on the test split, given the same ``Features``; nothing here
asks what kind of router it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from mixllm.core.errors import DataError, UnknownLLMError
from mixllm.core.types import RoutingData
from mixllm.evaluation.baselines import LEARNED, LinearCostModel, MLPRouter, make_baselines
from mixllm.evaluation.mixllm_adapter import MixLLMAdapter
from mixllm.evaluation.protocol import (
    ChoiceOutput,
    Features,
    Router,
    RouterOutput,
    ScoreRouterOutput,
    named_points,
    scores_from_predictions,
)
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
    """MixLLM's sweep output and calibrated choices (default budget + ``budget_pcts``),
    by report name; see ``MixLLMAdapter`` (same options)."""
    adapter = MixLLMAdapter(
        router,
        name,
        budget_pcts=budget_pcts,
        uncertainty_weight=uncertainty_weight,
        candidates=candidates,
    )
    out = adapter.output(test, Features())
    return {name: out}, named_points(name, out)


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
    return score_run(collect_outputs(router, train, test, **options))


@dataclass
class EvaluationInputs:
    """What every evaluated router reads: the splits limited to the evaluated LLMs, their
    shared ``Features``, and what scoring needs besides the outputs."""

    train: RoutingData
    test: RoutingData
    train_features: Features
    test_features: Features
    tags_test: list[list[str]]
    reference_llm: str | None
    notes: list[str]
    limit: list[str] | None  # the LLMs MixLLM is limited to (None: every one it knows)


@dataclass
class EvaluationRun:
    """What ``evaluate_router`` scores: every router's output on the (LLM-limited) test set."""

    test: RoutingData
    outputs: dict[str, RouterOutput]
    calibrated: dict[str, ChoiceOutput]
    tags_test: list[list[str]]
    reference_llm: str | None
    notes: list[str]

    @classmethod
    def of(cls, inputs: EvaluationInputs, outputs: Mapping[str, RouterOutput]) -> EvaluationRun:
        """The run of these routers' ``outputs`` (in report order) on ``inputs``."""
        calibrated: dict[str, ChoiceOutput] = {}
        for name, out in outputs.items():
            calibrated.update(named_points(name, out))
        return cls(
            inputs.test,
            dict(outputs),
            calibrated,
            inputs.tags_test,
            inputs.reference_llm,
            list(inputs.notes),
        )


def score_run(run: EvaluationRun) -> EvaluationReport:
    """Curves, AIQ and per-tag tables of every router in ``run`` (``scoring``), with notes."""
    report = evaluate_scores(
        run.test,
        run.outputs,
        reference_llm=run.reference_llm,
        tags=run.tags_test,
        calibrated=run.calibrated,
    )
    report.notes.extend(run.notes)
    return report


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
    (bootstrap intervals, APGR); ``peers`` limits the learned baselines (default: all).
    ``evaluation_inputs``, then ``run_routers`` over ``evaluated_routers``."""
    inputs = evaluation_inputs(
        router,
        train,
        test,
        plain_encoder=plain_encoder,
        progress=progress,
        candidates=candidates,
        peers=peers,
    )
    routers = evaluated_routers(router, inputs, variants=variants, seed=seed, peers=peers)
    outputs, _ = run_routers(
        routers,
        inputs.train,
        inputs.test,
        inputs.train_features,
        inputs.test_features,
        progress=progress,
    )
    return EvaluationRun.of(inputs, outputs)


def evaluation_inputs(
    router: Any,
    train: RoutingData,
    test: RoutingData,
    *,
    plain_encoder: Any = None,
    progress: bool = True,
    candidates: Sequence[str] | None = None,
    peers: Sequence[str] | None = None,
) -> EvaluationInputs:
    """The splits limited to the LLMs evaluated and their ``Features`` (plain embeddings,
    the router's tags, raw-prompt embeddings unless ``peers`` leaves out ``mlp_prompt``,
    the router's cost estimate): computed once for every router."""
    names, notes = shared_llms(router.llms_, test.llms, candidates)
    test, train = test.select_llms(names), train.select_llms(names)
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
    P_train = P_test = None
    if peers is None or "mlp_prompt" in peers:
        P_train = encoder.encode(train.queries["prompt"].tolist(), progress=progress)
        P_test = encoder.encode(test.queries["prompt"].tolist(), progress=progress)
    return EvaluationInputs(
        train,
        test,
        Features(X_train, tags_train, P_train),
        Features(X_test, tags_test, P_test, c_hat),
        tags_test,
        router.reference_llm_ if router.reference_llm_ in names else None,
        notes,
        None if names == list(router.llms_) else names,
    )


def evaluated_routers(
    router: Any,
    inputs: EvaluationInputs,
    *,
    variants: Mapping[str, Any] | None = None,
    seed: int = 0,
    peers: Sequence[str] | None = None,
) -> dict[str, Router]:
    """Every router to evaluate on ``inputs``, by report name: the baselines
    (``baseline_routers``), MixLLM (``router``) and its ``variants`` (ablations)."""
    routers = baseline_routers(seed, inputs.test.llms, peers)
    routers["mixllm"] = MixLLMAdapter(router, candidates=inputs.limit)
    for vname, variant in (variants or {}).items():
        routers[vname] = MixLLMAdapter(variant, vname, budget_pcts=(), candidates=inputs.limit)
    return routers


def run_router(
    router: Router,
    train: RoutingData,
    test: RoutingData,
    train_features: Features,
    test_features: Features,
) -> RouterOutput | None:
    """Fit one router on ``train`` and take its output on ``test``; None when its input
    features are absent (the router is left out). ``run_routers`` calls it for each."""
    if not (train_features.has(router.inputs) and test_features.has(router.inputs)):
        return None
    return router.fit(train, train_features).output(test, test_features)


def run_routers(
    routers: Mapping[str, Router],
    train: RoutingData,
    test: RoutingData,
    train_features: Features,
    test_features: Features,
    progress: bool = True,
) -> tuple[dict[str, RouterOutput], dict[str, ChoiceOutput]]:
    """Fit every router on ``train``, take its output on ``test`` (``run_router``, one after
    the other); a router whose input features are absent is left out. Returns the outputs
    and the routers' own decisions (``RouterOutput.points``) by report name."""
    outputs: dict[str, RouterOutput] = {}
    calibrated: dict[str, ChoiceOutput] = {}
    for name, router in tqdm(routers.items(), desc="routers", disable=not progress):
        out = run_router(router, train, test, train_features, test_features)
        if out is not None:
            outputs[name] = out
            calibrated.update(named_points(name, out))
    return outputs, calibrated


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


def baseline_routers(
    seed: int = 0, llms: Sequence[str] = (), only: Sequence[str] | None = None
) -> dict[str, Router]:
    """Fresh baselines (``make_baselines``) with the learned ones limited to ``only`` (the
    fixed ones always kept), then ``mlp_prompt``, RouterBench's MLP on the raw prompt."""
    routers = make_baselines(seed, llms)
    if only is not None:
        routers = {k: v for k, v in routers.items() if k not in LEARNED or k in only}
    routers["mlp_prompt"] = MLPRouter(seed=seed, inputs="prompt_embeddings")
    return routers


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
    left out when no tags are given. ``X_prompt`` (train, test features of the RAW prompt)
    adds ``mlp_prompt``, RouterBench's MLP on what RouterBench embeds. Keys: ``knn, mlp,
    svm, mf, tag_mean, sw_ranking, optllm, oracle, random`` + LLMs (+ ``mlp_prompt``).
    """
    if list(train.llms) != list(test.llms):
        raise DataError("train and test must have the same LLM columns in the same order")
    if len(X_train) != len(train) or len(X_test) != len(test):
        raise DataError("feature rows must match the train/test queries")
    if c_hat is None:
        cost_model = LinearCostModel().fit(train.queries["prompt_tokens"].to_numpy(), train.cost)
        c_hat = cost_model.predict(test.queries["prompt_tokens"].to_numpy())
    P_train, P_test = (None, None) if X_prompt is None else X_prompt
    outputs, _ = run_routers(
        baseline_routers(seed, test.llms, only),
        train,
        test,
        Features(X_train, tags_train, P_train),
        Features(X_test, tags_test, P_test, c_hat),
        progress=progress,
    )
    return outputs
