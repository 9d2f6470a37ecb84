"""Continual learning, measured the way the MixLLM paper does (NAACL 2025, Sec. 4.4).

A router is trained offline on part of the data, then the rest arrives as a stream: each
query is routed, the chosen LLM's recorded outcome comes back as feedback (graded quality,
a thumbs up/down, or nothing) and goes to ``update``; at window ends the router is scored
on held-out queries at the calibrated budget. The pieces here are the stream engine and its
metrics (windows, regret, traffic share, choices of removed LLMs); the four experiments
are in ``mixllm.tools.continual_experiments`` and the report in ``continual_report``.

Only the router's public API is used: ``fit``, ``route``, ``route_batch``, ``update``,
``add_llm``, ``remove_llm``, ``llms_`` and ``reference_llm_``.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from mixllm.core.types import RoutingData
from mixllm.routing.router import MixLLMRouter

FeedbackMode = Literal["graded", "binary", "none"]
MODES: tuple[FeedbackMode, ...] = ("graded", "binary", "none")
# A router event at a stream step, e.g. ``lambda r: r.add_llm(...)``.
Event = Callable[[MixLLMRouter], None]


# -------------------------------------------------------------------- stream bookkeeping


def arrival_order(n: int, seed: int = 0) -> np.ndarray:
    """A seeded permutation of ``n`` row indices: the order in which queries "arrive".

    RouterBench and MESS+ have no timestamps, and their files are sorted by task, so file
    order would be a task-by-task domain shift rather than a stream; a seeded shuffle is
    the stationary stream the paper's offline -> online setting assumes.
    """
    return np.random.default_rng(seed).permutation(n)


def window_bounds(n: int, n_windows: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` step ranges covering ``0..n`` in ``n_windows`` windows.

    Windows differ in length by at most one step; there are never more windows than steps
    and never an empty one (``n = 0`` gives no window).
    """
    if n_windows < 1:
        raise ValueError(f"n_windows must be >= 1, got {n_windows}")
    k = min(n_windows, n)
    edges = np.linspace(0, n, k + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def step_regret(
    quality: np.ndarray, cost: np.ndarray, chosen: np.ndarray, lam: np.ndarray
) -> np.ndarray:
    """Per-step regret of the choices against the per-query best available LLM.

    ``quality``/``cost`` are (n, k) recorded outcomes of the LLMs that were candidates at
    each step (NaN: not a candidate or not observed), ``chosen`` (n,) column indices and
    ``lam`` (n,) the willingness to pay (1/$) each decision used. Reward = quality -
    lam * cost, the decision maker's own objective scored with recorded outcomes; regret =
    best reward - obtained reward (>= 0). Units: quality points.
    """
    reward = quality - lam[:, None] * cost
    rows = np.arange(len(chosen))
    best = np.nanmax(np.where(np.isnan(reward), -np.inf, reward), axis=1)
    return np.maximum(best - reward[rows, chosen], 0.0)


def share_by_window(chosen: Sequence[str], llm: str, windows: list[tuple[int, int]]) -> np.ndarray:
    """Fraction of each window's queries routed to ``llm`` (shape ``(len(windows),)``)."""
    hits = np.array([c == llm for c in chosen], dtype=float)
    return np.array([hits[a:b].mean() if b > a else np.nan for a, b in windows])


def removed_choices(chosen: Sequence[str], removed: dict[str, int]) -> dict[str, dict[str, int]]:
    """How often each removed LLM was chosen before and after its removal step.

    ``removed`` maps an LLM to the stream step at which it was removed; the "after" count
    must be 0 for a correct router.
    """
    out = {}
    for llm, at in removed.items():
        before = sum(1 for c in chosen[:at] if c == llm)
        after = sum(1 for c in chosen[at:] if c == llm)
        out[llm] = {"before": before, "after": after, "steps_after": max(len(chosen) - at, 0)}
    return out


def feedback_kwargs(mode: FeedbackMode, quality: float, cost: float) -> dict | None:
    """The ``update`` arguments a user's feedback of kind ``mode`` would carry.

    Binary feedback is a thumbs up when the recorded quality is at least 0.5 (the paper's
    binary setting: the user only says whether the answer was good enough). The cost is
    known to the service from the upstream usage, so both kinds carry it. ``None``: no call.
    """
    if mode == "none" or np.isnan(quality):
        return None
    if mode == "graded":
        return {"quality": float(quality), "cost": float(cost)}
    return {"thumbs_up": bool(quality >= 0.5), "cost": float(cost)}


# ------------------------------------------------------------------------------ scoring


@dataclass
class EvalPoint:
    """The router scored on held-out queries after ``n_feedback`` stream steps."""

    n_feedback: int
    quality_pct: float  # mean recorded quality of the choices, % of the reference LLM's
    cost_pct: float  # mean recorded cost of the choices, % of the reference LLM's
    shares: dict[str, float] = field(default_factory=dict)


def candidates_in(router: MixLLMRouter, data: RoutingData) -> list[str]:
    """The router's active LLMs that ``data`` has outcomes for (a router is only scored on
    LLMs with recorded outcomes)."""
    return [m for m in router.llms_ if m in data.llms]


def evaluate_at_budget(
    router: MixLLMRouter, test: RoutingData, reference: str, budget: dict, n_feedback: int = 0
) -> EvalPoint:
    """Route ``test`` in one batch at ``budget`` (``route_batch`` kwargs) and score it.

    Quality % and cost % are relative to ``reference``'s recorded mean on ``test``.
    """
    decisions = router.route_batch(test.queries, candidates=candidates_in(router, test), **budget)
    cols = np.array([test.llm_index(d.llm) for d in decisions])
    rows = np.arange(len(test))
    ref = test.llm_index(reference)
    q = np.nanmean(test.quality[rows, cols]) / np.nanmean(test.quality[:, ref])
    c = np.nanmean(test.cost[rows, cols]) / np.nanmean(test.cost[:, ref])
    names, counts = np.unique([d.llm for d in decisions], return_counts=True)
    shares = {str(m): float(k) / len(test) for m, k in zip(names, counts, strict=True)}
    return EvalPoint(n_feedback, 100 * float(q), 100 * float(c), shares)


# ------------------------------------------------------------------------------ streaming


@dataclass
class StreamTrace:
    """What happened on one stream: the choices, their outcomes and the held-out scores."""

    label: str
    chosen: list[str]
    quality: np.ndarray  # (n,) recorded quality of each choice
    cost: np.ndarray  # (n,) recorded cost ($) of each choice
    regret: np.ndarray  # (n,) see step_regret
    evals: list[EvalPoint]
    events: dict[int, str] = field(default_factory=dict)

    @property
    def cum_regret(self) -> np.ndarray:
        """Cumulative regret after each step (quality points)."""
        return np.cumsum(self.regret)


def clone(router: MixLLMRouter) -> MixLLMRouter:
    """An independent copy of a fitted router that shares its (read-only) encoder.

    The encoder is the large part (a transformer) and routing never changes it, so copies
    for the stream variants share it instead of duplicating it.
    """
    enc = router.encoder_
    return copy.deepcopy(router, {id(enc): enc})


def run_stream(
    router: MixLLMRouter,
    stream: RoutingData,
    *,
    label: str,
    mode: FeedbackMode,
    budget: dict,
    test: RoutingData | None = None,
    reference: str | None = None,
    eval_at: Sequence[int] = (),
    events: dict[int, tuple[str, Event]] | None = None,
) -> StreamTrace:
    """Route ``stream`` query by query in order, giving feedback of kind ``mode``.

    ``budget``: ``route`` kwargs (``{"budget_pct": 25}``). Before step ``t`` the events at
    ``t`` run (``{t: (description, fn)}``, e.g. add or remove an LLM), and when ``t`` is in
    ``eval_at`` the router is scored on ``test`` against ``reference`` (``t = len(stream)``
    scores the final router). The router is changed in place: pass a ``clone``.
    """
    events = events or {}
    n, k = len(stream), len(stream.llms)
    eval_at = sorted(set(eval_at))
    chosen: list[str] = []
    lam = np.zeros(n)
    avail = np.zeros((n, k), dtype=bool)
    evals: list[EvalPoint] = []
    prompt_tokens = stream.queries["prompt_tokens"].to_numpy(dtype=int)
    texts = stream.queries["query"].tolist()
    for t in tqdm(range(n + 1), desc=f"stream {label}", leave=False, mininterval=2.0):
        for _, fn in [events[t]] if t in events else []:
            fn(router)
        if test is not None and t in eval_at:
            evals.append(evaluate_at_budget(router, test, reference or "", budget, t))
        if t == n:
            break
        cands = candidates_in(router, stream)
        d = router.route(texts[t], prompt_tokens=int(prompt_tokens[t]), candidates=cands, **budget)
        j = stream.llm_index(d.llm)
        chosen.append(d.llm)
        lam[t] = d.lambda_
        avail[t, [stream.llm_index(m) for m in cands]] = True
        fb = feedback_kwargs(mode, stream.quality[t, j], stream.cost[t, j])
        if fb is not None:
            router.update(texts[t], d.llm, prompt_tokens=int(prompt_tokens[t]), **fb)
    cols = np.array([stream.llm_index(m) for m in chosen], dtype=int)
    rows = np.arange(n)
    q_av = np.where(avail, stream.quality, np.nan)
    c_av = np.where(avail, stream.cost, np.nan)
    return StreamTrace(
        label=label,
        chosen=chosen,
        quality=stream.quality[rows, cols],
        cost=stream.cost[rows, cols],
        regret=step_regret(q_av, c_av, cols, lam),
        evals=evals,
        events={t: desc for t, (desc, _) in events.items()},
    )


def window_means(values: np.ndarray, windows: list[tuple[int, int]]) -> np.ndarray:
    """Mean of ``values`` over each window (NaN-aware)."""
    return np.array([np.nanmean(values[a:b]) if b > a else np.nan for a, b in windows])


def drop_llms(data: RoutingData, names: Sequence[str]) -> RoutingData:
    """``data`` without the columns of ``names`` (an LLM the offline router never saw)."""
    keep = [j for j, m in enumerate(data.llms) if m not in set(names)]

    def cols(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[:, keep]

    return RoutingData(
        queries=data.queries,
        llms=[data.llms[j] for j in keep],
        quality=data.quality[:, keep],
        cost=data.cost[:, keep],
        output_tokens=cols(data.output_tokens),
        latency_s=cols(data.latency_s),
        report=data.report,
    )


def rows_of(data: RoutingData, sources: Sequence[str], keep: bool = True) -> RoutingData:
    """Rows of ``data`` whose ``source`` (task) is (or, ``keep=False``, is not) in ``sources``."""
    mask = data.queries["source"].isin(list(sources)).to_numpy()
    return data.subset(np.flatnonzero(mask if keep else ~mask))
