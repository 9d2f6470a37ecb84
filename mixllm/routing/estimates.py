"""Quality, cost, uncertainty and service time of every known LLM for a batch of queries:
the trained artifact's offline predictions combined with the online state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mixllm.core.prices import LLMSpec
from mixllm.routing.artifact import OfflineEstimate, TrainedRouter
from mixllm.routing.latency import ServiceTime
from mixllm.routing.state import OnlineState


@dataclass(frozen=True)
class CandidateTable:
    """Per-LLM constants aligned with ``state.known``, built once per state version.

    The first ``n_trained`` columns are the trained LLMs in the artifact's order.
    """

    llms: list[str]
    n_trained: int
    in_price: np.ndarray  # $ per prompt token
    out_price: np.ndarray  # $ per output token
    ttft: np.ndarray
    per_prompt: np.ndarray
    per_output: np.ndarray
    concurrency: np.ndarray
    prior_quality: np.ndarray
    cost_scale: np.ndarray
    latency_scale: np.ndarray
    version: int

    @classmethod
    def build(cls, model: TrainedRouter, state: OnlineState) -> CandidateTable:
        """Arrays for ``state.known`` (trained LLMs first, then those added at runtime)."""
        specs, service, prior = [], [], []
        for llm in state.known:
            if llm in state.added:
                rt = state.added[llm]
                specs.append(rt.spec)
                service.append(spec_service_time(rt.spec))
                prior.append(rt.prior_quality)
            else:
                specs.append(model.prices[llm])
                service.append(model.service[llm])
                prior.append(model.prior_quality[llm])
        return cls(
            llms=list(state.known),
            n_trained=len(model.llms),
            in_price=np.array([s.input_price for s in specs]),
            out_price=np.array([s.output_price for s in specs]),
            ttft=np.array([s.ttft_s for s in service]),
            per_prompt=np.array([s.s_per_prompt_token for s in service]),
            per_output=np.array([s.s_per_output_token for s in service]),
            concurrency=np.array([s.concurrency for s in specs]),
            prior_quality=np.array(prior, dtype=float),
            cost_scale=np.array([state.cost_scale[m] for m in state.known]),
            latency_scale=np.array([state.latency_scale[m] for m in state.known]),
            version=state.version,
        )


def spec_service_time(spec: LLMSpec) -> ServiceTime:
    """Service time of an LLM known only from its spec (no recorded latencies)."""
    return ServiceTime(spec.ttft_s, 0.0, 1.0 / spec.tokens_per_s)


@dataclass(frozen=True)
class Estimates:
    """(n, k) matrices over ``llms``; quality is offline + online correction, in [0, 1]."""

    llms: list[str]
    quality: np.ndarray
    offline_quality: np.ndarray
    cost: np.ndarray  # $, learned cost scale applied
    base_cost: np.ndarray  # $, before the learned scale
    uncertainty: np.ndarray  # LinUCB confidence width
    output_tokens: np.ndarray
    service_s: np.ndarray  # seconds, learned latency scale applied
    base_service_s: np.ndarray
    Z: np.ndarray  # (n, d) bandit context


def estimate(
    model: TrainedRouter,
    state: OnlineState,
    table: CandidateTable,
    X: np.ndarray,
    tags: Sequence[Sequence[str]],
    tokens: np.ndarray,
) -> Estimates:
    """Everything the decision needs for embeddings ``X`` (n, e) and (n, 2) token counts."""
    return combine(model.offline(X, tags, tokens), state, table, tokens)


def combine(
    off: OfflineEstimate, state: OnlineState, table: CandidateTable, tokens: np.ndarray
) -> Estimates:
    """Offline predictions (n, trained k) + online state -> estimates over ``table.llms``.

    Used directly on stored offline predictions (the calibration rows of the artifact).
    """
    n, k = off.quality.shape[0], len(table.llms)
    q_off = np.empty((n, k))
    toks = np.empty((n, k))
    q_off[:, : table.n_trained] = off.quality
    toks[:, : table.n_trained] = off.output_tokens
    q_off[:, table.n_trained :] = np.nan
    toks[:, table.n_trained :] = np.nan
    # LLMs without a model (added at runtime, too little data) get their prior quality and
    # the mean predicted length of the others
    q_off = np.where(np.isnan(q_off), table.prior_quality, q_off)
    if np.isnan(toks).any():
        finite = np.isfinite(toks)
        default = np.where(finite, toks, 0.0).sum(1) / np.maximum(finite.sum(1), 1)
        toks = np.where(finite, toks, np.where(finite.any(1), default, 100.0)[:, None])
    delta, width = state.bandit.correction(off.Z, table.llms)
    prompt = tokens[:, 0][:, None]
    base_cost = table.in_price * prompt + table.out_price * toks
    base_service = table.ttft + table.per_prompt * prompt + table.per_output * toks
    return Estimates(
        llms=table.llms,
        quality=np.clip(q_off + delta, 0.0, 1.0),
        offline_quality=q_off,
        cost=base_cost * table.cost_scale,
        base_cost=base_cost,
        uncertainty=width,
        output_tokens=toks,
        service_s=base_service * table.latency_scale,
        base_service_s=base_service,
        Z=off.Z,
    )
