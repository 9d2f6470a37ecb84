"""The paper's four continual-learning experiments on recorded routing data.

1. ``offline_online``: offline on a fraction of the training split, the rest streamed with
   graded / binary / no feedback, scored per window against a router trained on all of it.
2. ``new_llm``: a useful LLM is held out of training and added mid-stream with ``add_llm``,
   with and without the LinUCB exploration bonus.
3. ``out_of_domain``: train on all tasks but one, stream that one; and MESS+ (other LLMs).
4. ``removal``: an LLM removed mid-stream is never chosen again.

Every router shares one encoder (``Setup.encoder``): embeddings are the slow part and are
cached by content hash, so the whole section embeds each query once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from mixllm.core.config import MixLLMConfig
from mixllm.core.prices import load_prices
from mixllm.core.types import RoutingData
from mixllm.data.splits import split
from mixllm.routing.router import MixLLMRouter
from mixllm.tools.continual import (
    MODES,
    EvalPoint,
    StreamTrace,
    arrival_order,
    clone,
    drop_llms,
    evaluate_at_budget,
    removed_choices,
    rows_of,
    run_stream,
    window_bounds,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContinualSize:
    """Size knobs of the continual section (defaults: what the committed benchmark runs)."""

    offline_frac: float = 0.3  # paper: 30 % offline, 70 % online
    n_windows: int = 10
    budget_pct: float = 25.0  # % of the reference LLM's cost: the router's default budget
    checkpoints: tuple[int, ...] = (100, 500)  # feedback counts of the out-of-domain table
    add_at: float = 0.2  # the new LLM joins after this fraction of the stream
    # exploration bonus weights tried for the new LLM besides 0 and the configured one
    extra_alphas: tuple[float, ...] = (0.5,)
    messplus_n: int = 1500  # MESS+ queries sampled (of 13k)
    max_stream: int | None = None  # cap on stream lengths (quick runs)
    finetune: bool = False  # fine-tune the shared encoder on the offline queries
    seed: int = 0

    @classmethod
    def quick(cls) -> ContinualSize:
        """A smoke-sized run (about 3 minutes on 2 busy cores): short streams, few windows."""
        return cls(n_windows=4, checkpoints=(50, 100), messplus_n=400, max_stream=150)


@dataclass
class Setup:
    """Data splits, the shared encoder's first router and the budget every router uses."""

    config: MixLLMConfig
    size: ContinualSize
    train: RoutingData
    test: RoutingData
    offline: RoutingData
    stream: RoutingData
    offline_router: MixLLMRouter
    reference: str
    budget: dict = field(default_factory=dict)

    def fit(self, data: RoutingData, changes: dict | None = None) -> MixLLMRouter:
        """A router on ``data`` with the shared encoder (never fine-tuned again)."""
        cfg = self.config.updated({"encoder": {"finetune": False}, **(changes or {})})
        return MixLLMRouter(cfg, encoder=self.offline_router.encoder_).fit(data)


def _cap(data: RoutingData, n: int | None) -> RoutingData:
    return data if n is None or len(data) <= n else data.subset(np.arange(n))


def make_setup(data: RoutingData, config: MixLLMConfig, size: ContinualSize) -> Setup:
    """Split ``data`` (the benchmark's train/held-out split), order the stream, fit offline."""
    cfg = config.updated({"encoder": {"finetune": size.finetune}})
    train, test = split(data, cfg)
    order = arrival_order(len(train), size.seed)
    n_off = round(size.offline_frac * len(train))
    offline = train.subset(np.sort(order[:n_off]))
    stream = _cap(train.subset(order[n_off:]), size.max_stream)
    router = MixLLMRouter(cfg).fit(offline)
    budget = {"budget_pct": size.budget_pct}
    return Setup(cfg, size, train, test, offline, stream, router, router.reference_llm_, budget)


# ------------------------------------------------------------------ 1. offline -> online


@dataclass
class OfflineOnline:
    """Experiment 1: per-window held-out scores of each feedback mode, and the ceiling."""

    windows: list[tuple[int, int]]
    traces: dict[str, StreamTrace]
    ceiling: EvalPoint
    n_offline: int
    n_stream: int


def offline_online(setup: Setup, ceiling: MixLLMRouter) -> OfflineOnline:
    """Stream the online part with each feedback mode; score on held-out after each window."""
    windows = window_bounds(len(setup.stream), setup.size.n_windows)
    eval_at = [0, *(b for _, b in windows)]
    traces = {
        mode: run_stream(
            clone(setup.offline_router),
            setup.stream,
            label=mode,
            mode=mode,
            budget=setup.budget,
            test=setup.test,
            reference=setup.reference,
            eval_at=eval_at,
        )
        for mode in MODES
    }
    top = evaluate_at_budget(ceiling, setup.test, setup.reference, setup.budget)
    return OfflineOnline(windows, traces, top, len(setup.offline), len(setup.stream))


# ---------------------------------------------------------------------------- 2. new LLM


@dataclass
class NewLLM:
    """Experiment 2: traces of the never-added / added-without-bonus / added-with-bonus runs."""

    llm: str
    add_step: int
    alpha: float
    windows: list[tuple[int, int]]
    traces: dict[str, StreamTrace]


def most_used(router: MixLLMRouter, test: RoutingData, reference: str, budget: dict) -> str:
    """The LLM ``router`` routes most held-out traffic to at ``budget``, the reference aside."""
    shares = evaluate_at_budget(router, test, reference, budget).shares
    ranked = sorted((s, m) for m, s in shares.items() if m != reference)
    return ranked[-1][1] if ranked else reference


def add_from_prices(router: MixLLMRouter, llm: str, prices_path: str | None = None) -> None:
    """``add_llm`` with the list prices and speed of ``llm`` from the price table."""
    s = load_prices(prices_path)[llm]
    router.add_llm(
        llm,
        input_price=s.input_price,
        output_price=s.output_price,
        tokens_per_s=s.tokens_per_s,
        ttft_s=s.ttft_s,
        concurrency=s.concurrency,
    )


def with_alpha(router: MixLLMRouter, alpha: float) -> MixLLMRouter:
    """A clone of ``router`` that scores with exploration weight ``alpha``.

    One fit serves every alpha on fully observed training data (RouterBench): each trained
    LLM is observed on every training query, so their LinUCB widths are equal, the bonus
    shifts all scores alike and the budget calibration (lambda) does not depend on alpha;
    only an LLM without history (wider bound) is scored differently, which is the point.
    """
    r = clone(router)
    r.config = r.cfg.updated({"bandit": {"alpha": alpha}})
    return r


def new_llm(setup: Setup, llm: str) -> NewLLM:
    """Hold ``llm`` out of offline training, add it at ``size.add_at`` of the stream.

    Runs with alpha = 0 (no exploration bonus), the configured ``bandit.alpha`` and each
    of ``size.extra_alphas``, all with graded feedback, plus a run where the LLM never
    joins. The new LLM gets its list prices and the configured prior quality
    (``bandit.new_llm_prior_quality``), as an operator adding an endpoint would.
    """
    alpha = setup.config.bandit.alpha
    base = drop_llms(setup.offline, [llm])
    add_step = round(setup.size.add_at * len(setup.stream))
    event = {add_step: (f"add {llm}", lambda r: add_from_prices(r, llm, setup.config.prices_path))}
    runs = {"never added": (alpha, {})}
    for a in dict.fromkeys([0.0, alpha, *setup.size.extra_alphas]):
        runs[f"added, alpha = {a:g}"] = (a, event)
    fitted = setup.fit(base)
    traces = {}
    for label, (a, events) in runs.items():
        traces[label] = run_stream(
            with_alpha(fitted, a),
            setup.stream,
            label=label,
            mode="graded",
            budget=setup.budget,
            events=events,
        )
    windows = window_bounds(len(setup.stream), setup.size.n_windows)
    return NewLLM(llm, add_step, alpha, windows, traces)


# ---------------------------------------------------------------------- 3. out of domain


@dataclass
class OODResult:
    """Experiment 3, one held-out domain: scores before/after feedback and in-domain."""

    name: str
    n_offline: int
    n_stream: int
    evals: list[EvalPoint]
    in_domain: EvalPoint

    def after(self, n: int) -> EvalPoint | None:
        """The score after ``n`` feedback, or at the stream's end if it is shorter."""
        return next((e for e in self.evals if e.n_feedback == min(n, self.n_stream)), None)


def _checkpoints(size: ContinualSize, n: int) -> list[int]:
    return sorted({0, *(min(c, n) for c in size.checkpoints)})


def out_of_domain(setup: Setup, ceiling: MixLLMRouter, task: str) -> OODResult:
    """Train on the other tasks, stream ``task``'s training rows with graded feedback.

    Scored on ``task``'s held-out rows before any feedback and after each checkpoint,
    against the in-domain ``ceiling`` (trained on every task's training rows).
    """
    offline = rows_of(setup.train, [task], keep=False)
    rows = rows_of(setup.train, [task])
    n_max = max(setup.size.checkpoints)
    stream = _cap(rows.subset(arrival_order(len(rows), setup.size.seed)), n_max)
    test = rows_of(setup.test, [task])
    trace = run_stream(
        setup.fit(offline),
        stream,
        label=f"ood {task}",
        mode="graded",
        budget=setup.budget,
        test=test,
        reference=setup.reference,
        eval_at=_checkpoints(setup.size, len(stream)),
    )
    top = evaluate_at_budget(ceiling, test, setup.reference, setup.budget)
    return OODResult(f"RouterBench: {task}", len(offline), len(stream), trace.evals, top)


def deploy_on(source: MixLLMRouter, llms: list[str], prices_path: str | None) -> MixLLMRouter:
    """A copy of ``source`` whose candidates are exactly ``llms``: the new ones added with
    ``add_llm`` (list prices), all others removed with ``remove_llm``."""
    router = clone(source)
    for m in llms:
        if m not in router.llms_:
            add_from_prices(router, m, prices_path)
    for m in list(router.llms_):
        if m not in llms:
            router.remove_llm(m)
    return router


# A % budget this large maps to lambda = 0 for any calibration: quality alone decides.
UNCONSTRAINED = {"budget_pct": 1000.0}


def messplus_transfer(
    setup: Setup, source: MixLLMRouter, mp: RoutingData
) -> tuple[list[OODResult], dict]:
    """A RouterBench-trained router deployed on MESS+, whose three Llama LLMs it never saw.

    MESS+ has no outcome for any RouterBench LLM, so a router trained on RouterBench can
    carry over only its encoder, tagger and calibration: the Llamas are added with
    ``add_llm`` and the RouterBench LLMs removed, and everything it knows about the Llamas
    comes from streamed feedback. The in-domain router is trained on MESS+'s own training
    split. Two budgets: the same dollars for both (``size.budget_pct`` % of the best
    Llama's mean training cost; a % budget would refer to each router's own reference),
    and no cost constraint (lambda = 0), which isolates what feedback teaches about quality.
    """
    cfg = setup.config.updated({"decision": {"reference_llm": None}})
    train, test = split(mp, cfg)
    stream = _cap(
        train.subset(arrival_order(len(train), setup.size.seed)), max(setup.size.checkpoints)
    )
    ref = mp.llms[int(np.nanargmax(np.nanmean(train.quality, axis=0)))]
    usd = setup.size.budget_pct / 100 * float(np.nanmean(train.cost[:, train.llm_index(ref)]))
    in_domain = setup.fit(train, {"decision": {"reference_llm": None}})
    budgets = {f"${usd:.2g}/query": {"budget_usd": usd}, "no cost constraint": UNCONSTRAINED}
    out = []
    for label, budget in budgets.items():
        trace = run_stream(
            deploy_on(source, list(mp.llms), cfg.prices_path),
            stream,
            label=f"messplus {label}",
            mode="graded",
            budget=budget,
            test=test,
            reference=ref,
            eval_at=_checkpoints(setup.size, len(stream)),
        )
        top = evaluate_at_budget(in_domain, test, ref, budget)
        out.append(OODResult(f"MESS+, Llamas added, {label}", 0, len(stream), trace.evals, top))
    info = {"n_train": len(train), "n_test": len(test), "reference": ref, "budget_usd": usd}
    return out, info


# ------------------------------------------------------------------------ 4. removal


@dataclass
class Removal:
    """Experiment 4: choices of an LLM removed mid-stream, before and after."""

    llm: str
    at: int
    counts: dict[str, int]
    held_out_after: int  # held-out queries routed to it by the final router


def removal(setup: Setup, llm: str) -> Removal:
    """Remove ``llm`` halfway through a graded-feedback stream and count its choices."""
    at = len(setup.stream) // 2
    router = clone(setup.offline_router)
    trace = run_stream(
        router,
        setup.stream,
        label=f"remove {llm}",
        mode="graded",
        budget=setup.budget,
        events={at: (f"remove {llm}", lambda r: r.remove_llm(llm))},
    )
    final = evaluate_at_budget(router, setup.test, setup.reference, setup.budget)
    after = round(final.shares.get(llm, 0.0) * len(setup.test))
    return Removal(llm, at, removed_choices(trace.chosen, {llm: at})[llm], after)


# ------------------------------------------------------------------------------- all


@dataclass
class ContinualResults:
    """Everything the continual section reports."""

    size: ContinualSize
    setup: Setup
    offline_online: OfflineOnline
    new_llm: NewLLM
    ood: list[OODResult]
    messplus_info: dict
    removal: Removal


def run_continual(
    data: RoutingData,
    config: MixLLMConfig,
    size: ContinualSize,
    messplus: RoutingData | None = None,
) -> ContinualResults:
    """Run the four experiments on ``data`` (RouterBench) and ``messplus`` (optional)."""
    setup = make_setup(data, config, size)
    log.info(
        "continual: %d offline, %d streamed, %d held out",
        len(setup.offline),
        len(setup.stream),
        len(setup.test),
    )
    ceiling = setup.fit(setup.train)
    exp1 = offline_online(setup, ceiling)
    newcomer = most_used(ceiling, setup.test, setup.reference, setup.budget)
    exp2 = new_llm(setup, newcomer)
    tasks = sorted(setup.train.queries["source"].unique())
    ood = [out_of_domain(setup, ceiling, t) for t in tasks] if len(tasks) > 1 else []
    mp_info: dict = {}
    if messplus is not None:
        res, mp_info = messplus_transfer(setup, ceiling, messplus)
        ood.extend(res)
    offline_top = most_used(setup.offline_router, setup.test, setup.reference, setup.budget)
    exp4 = removal(setup, offline_top)
    return ContinualResults(replace(size), setup, exp1, exp2, ood, mp_info, exp4)
