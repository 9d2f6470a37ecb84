"""Continual learning as transactions on an ``OnlineState``: feedback, new and removed
candidates. Each function changes the state it is given (a store's private copy) and
raises before changing anything when the request is invalid."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mixllm.core.errors import InvalidRequestError, UnknownLLMError
from mixllm.core.prices import LLMSpec
from mixllm.routing.artifact import TrainedRouter
from mixllm.routing.estimates import CandidateTable, estimate
from mixllm.routing.state import OnlineState, RuntimeLLM

# Weight of a new observation in the learned cost and latency scales (an EWMA).
SCALE_WEIGHT = 0.1
# One observation may claim at most this factor between observed and predicted, and the
# learned scale stays within [1/MAX_SCALE, MAX_SCALE]: a single in-range but wild feedback
# (cost $100 for a $0.0001 call) must not price an LLM out of every later decision.
MAX_RATIO = 10.0
MAX_SCALE = 10.0


def learn(
    model: TrainedRouter,
    state: OnlineState,
    llm: str,
    X: np.ndarray,
    tags: Sequence[Sequence[str]],
    tokens: np.ndarray,
    quality: float | None,
    cost: float | None,
    latency_s: float | None,
    weight: float = 1.0,
) -> None:
    """Apply one checked observation of ``llm`` on the query embedded as ``X`` (1, e).

    The bandit regresses the residual of the OFFLINE prediction: a target that contained
    the bandit's own correction would make it learn only half the error. Cost and latency
    move an EWMA of observed / predicted (before scaling), so the scale converges to it.
    """
    table = CandidateTable.build(model, state)
    est = estimate(model, state, table, X, tags, tokens)
    j = table.llms.index(llm)
    if quality is not None:
        residual = quality - float(est.offline_quality[0, j])
        state.bandit.update(llm, est.Z[0], residual, weight)
    if cost is not None and est.base_cost[0, j] > 0:
        state.cost_scale[llm] = _rescaled(state.cost_scale[llm], cost, est.base_cost[0, j])
    if latency_s is not None and est.base_service_s[0, j] > 0:
        state.latency_scale[llm] = _rescaled(
            state.latency_scale[llm], latency_s, est.base_service_s[0, j]
        )


def add_candidate(state: OnlineState, spec: LLMSpec, prior: float, trained: bool) -> None:
    """Make ``spec.name`` a candidate; a new one starts with a wide bound (explored)."""
    name = spec.name
    if name in state.active:
        raise InvalidRequestError(f"LLM {name!r} is already a candidate")
    if name not in state.known:
        state.known.append(name)
        state.bandit.add(name)
        state.cost_scale[name] = 1.0
        state.latency_scale[name] = 1.0
    if not trained:
        state.added[name] = RuntimeLLM(spec, prior)
    state.active.append(name)


def remove_candidate(state: OnlineState, name: str) -> None:
    """Stop routing to ``name``; what it learned stays in ``known`` should it come back."""
    if name not in state.active:
        raise UnknownLLMError(f"LLM {name!r} is not a candidate; active: {', '.join(state.active)}")
    if len(state.active) == 1:
        raise InvalidRequestError("cannot remove the last candidate LLM")
    state.active.remove(name)


def _rescaled(scale: float, observed: float, predicted: float) -> float:
    """The EWMA of observed / predicted, each ratio and the result bounded (see MAX_*)."""
    ratio = min(max(observed / float(predicted), 1 / MAX_RATIO), MAX_RATIO)
    new = (1 - SCALE_WEIGHT) * scale + SCALE_WEIGHT * ratio
    return min(max(new, 1 / MAX_SCALE), MAX_SCALE)
