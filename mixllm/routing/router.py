"""``MixLLMRouter``: serves a trained MixLLM router, the scikit-learn-style face of it.

It serves an immutable ``TrainedRouter`` (``self.model``: from ``load``, from
``serving(model)``, or from ``fit``, which hands the training to ``training.Training``)
plus an ``OnlineState`` held by a ``StateStore`` (``self.store``; in memory unless one is
given, e.g. a shared one). Routing reads one state snapshot per batch; feedback,
``add_llm`` and ``remove_llm`` are transactions on the store, so concurrent readers never
see half an update.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mixllm.core.bounds import check_cost, check_latency, check_quality
from mixllm.core.config import MixLLMConfig
from mixllm.core.errors import ConfigError, NotFittedError, UnknownLLMError
from mixllm.core.prices import LLMSpec, PriceTable
from mixllm.core.types import RoutingData
from mixllm.routing import artifact_io, online
from mixllm.routing.artifact import TrainedRouter
from mixllm.routing.budget import CalibrationCache
from mixllm.routing.decision import BudgetCalibration, choose, score
from mixllm.routing.encoder import Encoder
from mixllm.routing.estimates import CandidateTable, Estimates, estimate
from mixllm.routing.latency import QueueState, latency_penalty, queue_waits
from mixllm.routing.outputs import CandidateScore, Decision, Predictions, as_batch
from mixllm.routing.state import MemoryStateStore, OnlineState, StateStore, candidate_mask
from mixllm.routing.tagging import Tagger
from mixllm.routing.training import Training


class MixLLMRouter:
    """Routes each query to the LLM with the best quality - lambda*cost trade-off (MixLLM).

    ``tagger``, ``encoder`` and ``prices`` are the parts ``fit`` trains with (default: the
    config builds them); pass a ``store`` to keep the online state elsewhere.
    """

    def __init__(
        self,
        config: MixLLMConfig | None = None,
        tagger: Tagger | None = None,
        encoder: Encoder | None = None,
        prices: PriceTable | None = None,
        store: StateStore | None = None,
    ):
        self.config = config
        self.tagger = tagger
        self.encoder = encoder
        self.prices = prices
        self.model: TrainedRouter | None = None
        self.store: StateStore | None = store
        self._own_store = store is None
        self._table: CandidateTable | None = None
        self._calibrations = CalibrationCache()

    @property
    def cfg(self) -> MixLLMConfig:
        """The effective config."""
        return self.config or MixLLMConfig()

    def fit(self, data: RoutingData) -> MixLLMRouter:
        """Train on ``data`` (every stage of ``training.Training``), then serve the result."""
        return self._serve(
            Training.start(self.cfg, self.tagger, self.encoder, self.prices).fit(data)
        )

    @classmethod
    def serving(
        cls,
        model: TrainedRouter,
        *,
        store: StateStore | None = None,
        state: OnlineState | None = None,
    ) -> MixLLMRouter:
        """A router serving ``model`` (e.g. ``Training.freeze()``'s) from ``store``."""
        return cls(model.config, store=store)._serve(model, state)

    def _serve(self, model: TrainedRouter, state: OnlineState | None = None) -> MixLLMRouter:
        """Serve ``model``; the store keeps a state it already holds (a shared store resumes
        what other replicas learned), else gets ``state`` (default: a fresh one)."""
        self.model = model
        state = state or OnlineState.initial(list(model.llms), model.bandit_prior)
        if self._own_store:
            # a store of our own starts afresh with every fit or load
            self.store = MemoryStateStore(state)
        else:
            _check_compatible(model, self.store.seed(state))
        self._table = None
        self._calibrations = CalibrationCache()
        return self

    def use_store(self, store: StateStore) -> MixLLMRouter:
        """Keep the online state in ``store`` from now on (e.g. one every replica shares): it
        resumes the state ``store`` holds, else starts from this router's current one."""
        model = self._model()
        state = self.store.read()
        self.store, self._own_store = store, False
        self._serve(model, state)
        return self

    # -- views -----------------------------------------------------------------------------
    def _model(self) -> TrainedRouter:
        if self.model is None:
            raise NotFittedError("router is not fitted: call fit() or MixLLMRouter.load()")
        return self.model

    @property
    def llms_(self) -> list[str]:
        """Active candidate LLMs."""
        self._model()
        return list(self.store.read().active)

    @property
    def all_llms_(self) -> list[str]:
        """Every LLM the router knows (trained, added, removed ones included)."""
        self._model()
        return list(self.store.read().known)

    @property
    def reference_llm_(self) -> str:
        """The LLM budgets in % refer to."""
        return self._model().reference_llm

    @property
    def lambda_(self) -> float:
        """Lambda at the configured budget."""
        return self._model().lambda_

    @property
    def calibration_(self) -> BudgetCalibration:
        """Budget -> lambda calibration."""
        return self._model().calibration

    @property
    def encoder_(self) -> Encoder:
        """The trained (tag-enhanced) encoder."""
        return self._model().encoder

    @property
    def tagger_(self) -> Tagger:
        """The tagger."""
        return self._model().tagger

    @property
    def prices_(self) -> PriceTable:
        """Price table of the trained LLMs (one added at runtime: ``spec``)."""
        return self._model().prices

    def spec(self, llm: str) -> LLMSpec:
        """Price, speed and concurrency of a known LLM (trained or added at runtime)."""
        state = self.store.read()
        if llm in state.added:
            return state.added[llm].spec
        return self._model().prices[llm]

    def _snapshot(self) -> tuple[OnlineState, CandidateTable]:
        state = self.store.read()
        table = self._table
        if table is None or table.version != state.version or table.llms != state.known:
            table = self._table = CandidateTable.build(self._model(), state)
        return state, table

    def calibration_for(
        self,
        mask: np.ndarray | None = None,
        state: OnlineState | None = None,
        table: CandidateTable | None = None,
    ) -> BudgetCalibration:
        """Budget -> lambda for the candidates ``mask`` ((k,) bool over ``all_llms_``;
        default: the active ones), re-calibrated on the artifact's calibration rows."""
        if state is None or table is None:
            state, table = self._snapshot()
        if mask is None:
            mask = candidate_mask(state, None)
        return self._calibrations.get(self._model(), state, table, mask, self.cfg.bandit.alpha)

    # -- prediction and routing ------------------------------------------------------------
    def _estimate(self, X, tags, tokens) -> tuple[OnlineState, CandidateTable, Estimates]:
        state, table = self._snapshot()
        return state, table, estimate(self._model(), state, table, X, tags, tokens)

    def predict(self, queries: pd.DataFrame | Sequence[str]) -> Predictions:
        """Predicted quality, cost, uncertainty and service time of every known LLM."""
        texts, tokens = as_batch(queries)
        X, tags = self._model().embed(texts)
        _, _, est = self._estimate(X, tags, tokens)
        return Predictions(
            list(est.llms), est.quality, est.cost, est.uncertainty, est.service_s, tags
        )

    def route(
        self,
        query: str,
        *,
        budget_usd: float | None = None,
        budget_pct: float | None = None,
        candidates: Sequence[str] | None = None,
        queue: dict[str, QueueState] | None = None,
        prompt_tokens: int | None = None,
    ) -> Decision:
        """Pick the LLM for one query under a budget (default: the configured one)."""
        return self.route_batch(
            _one(query, prompt_tokens),
            budget_usd=budget_usd,
            budget_pct=budget_pct,
            candidates=candidates,
            queue=queue,
        )[0]

    def route_batch(
        self,
        queries: pd.DataFrame | Sequence[str],
        *,
        budget_usd: float | None = None,
        budget_pct: float | None = None,
        candidates: Sequence[str] | None = None,
        queue: dict[str, QueueState] | None = None,
    ) -> list[Decision]:
        """Pick the LLM for each query (one encoder pass for the batch)."""
        texts, tokens = as_batch(queries)
        X, tags = self._model().embed(texts)
        return self.decide(
            X,
            tags,
            tokens,
            budget_usd=budget_usd,
            budget_pct=budget_pct,
            candidates=candidates,
            queue=queue,
        )

    def decide(
        self,
        X: np.ndarray,
        tags: list[list[str]],
        tokens: np.ndarray,
        *,
        budget_usd: float | None = None,
        budget_pct: float | None = None,
        candidates: Sequence[str] | None = None,
        queue: dict[str, QueueState] | None = None,
    ) -> list[Decision]:
        """Decisions from precomputed embeddings (n, e), tags and (n, 2) token counts.

        Everything after the encoder: the part timed as "routing decision".
        """
        model = self._model()
        if budget_usd is None and budget_pct is None:
            budget = model.default_budget()
        else:
            budget = model.calibration.budget_usd(budget_usd, budget_pct)
        state, table, est = self._estimate(X, tags, tokens)
        mask = candidate_mask(state, candidates)
        # lambda for THIS candidate set and state: a budget holds for any of them
        lam = self.calibration_for(mask, state, table).lambda_for(budget)
        lat = est.service_s + queue_waits(queue, est.service_s, table.llms)
        bonus = self.cfg.bandit.alpha * est.uncertainty
        if queue is not None:
            bonus = bonus - latency_penalty(lat, self.cfg.latency)
        q = np.where(mask, est.quality, np.nan)
        s = score(q, est.cost, lam, bonus)
        picks = choose(q, est.cost, lam, bonus)
        cols = np.flatnonzero(mask)
        return [
            Decision(
                est.llms[j],
                tags[i],
                [
                    CandidateScore(
                        est.llms[k],
                        float(est.quality[i, k]),
                        float(est.cost[i, k]),
                        float(lat[i, k]),
                        float(est.uncertainty[i, k]),
                        float(s[i, k]),
                    )
                    for k in cols
                ],
                lam,
                budget,
                int(tokens[i, 0]),
            )
            for i, j in enumerate(picks)
        ]

    # -- continual learning ----------------------------------------------------------------
    def update(
        self,
        query: str,
        llm: str,
        *,
        quality: float | None = None,
        thumbs_up: bool | None = None,
        cost: float | None = None,
        latency_s: float | None = None,
        prompt_tokens: int | None = None,
    ) -> None:
        """Learn from one observed outcome of ``llm`` on ``query``.

        ``quality`` is graded in [0, 1]; ``thumbs_up`` maps to 1.0 / 0.0 when no grade is
        given (RouterBench's quality of these tasks is 0/1 correctness, so a thumb carries
        the same information as a grade there). ``cost`` ($) and ``latency_s`` rescale that
        LLM's predictions. Raises ``InvalidRequestError`` on a non-finite or out-of-range
        value and ``UnknownLLMError`` on an LLM the router never knew.
        """
        model = self._model()
        if quality is None and thumbs_up is not None:
            quality = 1.0 if thumbs_up else 0.0
        quality = check_quality(quality)
        cost = check_cost(cost)
        latency_s = check_latency(latency_s)
        if llm not in self.store.read().known:
            raise UnknownLLMError(f"unknown LLM {llm!r}; known: {', '.join(self.all_llms_)}")
        texts, tokens = as_batch(_one(query, prompt_tokens))
        X, tags = model.embed(texts)
        weight = self.cfg.bandit.feedback_weight
        self.store.transact(
            lambda s: online.learn(model, s, llm, X, tags, tokens, quality, cost, latency_s, weight)
        )

    def add_llm(
        self,
        name: str,
        *,
        input_price: float,
        output_price: float,
        tokens_per_s: float | None = None,
        ttft_s: float | None = None,
        concurrency: int | None = None,
        prior_quality: float | None = None,
    ) -> None:
        """Add a candidate at runtime: no history, so the bandit's wide bound explores it.

        A trained LLM that was removed comes back with what it had learned (the prices
        given here are ignored for it).
        """
        self._model()
        spec = LLMSpec(
            name=name,
            input_price=input_price,
            output_price=output_price,
            tokens_per_s=tokens_per_s or 50.0,
            ttft_s=0.5 if ttft_s is None else ttft_s,
            concurrency=concurrency or self.cfg.latency.default_concurrency,
        )
        prior = self.cfg.bandit.new_llm_prior_quality if prior_quality is None else prior_quality
        prior = check_quality(prior)
        trained = name in self._model().llms
        self.store.transact(lambda s: online.add_candidate(s, spec, prior, trained))

    def remove_llm(self, name: str) -> None:
        """Stop routing to ``name`` at once (its learned state is kept should it come back)."""
        self._model()
        self.store.transact(lambda s: online.remove_candidate(s, name))

    # -- persistence -----------------------------------------------------------------------
    def save(self, path: str | Path, *, with_state: bool = False) -> None:
        """Write the trained router (format: ``mixllm.routing.artifact_io``) to ``path``.

        ``with_state`` also writes a snapshot of the online state (what feedback and
        runtime changes taught it), which ``load`` then resumes from.
        """
        state = self.store.read() if with_state else None
        artifact_io.save_router(self._model(), path, state)

    @classmethod
    def load(
        cls,
        path: str | Path,
        cache_dir: str | Path | None = None,
        store: StateStore | None = None,
        encoder_threads: int | None = None,
    ) -> MixLLMRouter:
        """Load a router written by ``save``; raises ``NotFittedError`` naming the problem.
        ``encoder_threads``: see ``artifact_io.load_router``."""
        model, state = artifact_io.load_router(path, cache_dir, encoder_threads)
        return cls.serving(model, store=store, state=state)


def _one(query: str, prompt_tokens: int | None) -> str | pd.DataFrame:
    """One query, as a frame carrying its prompt token count when one is given."""
    if prompt_tokens is None:
        return query
    return pd.DataFrame({"query": [query], "prompt_tokens": [float(prompt_tokens)]})


def _check_compatible(model: TrainedRouter, held: OnlineState) -> None:
    """ConfigError when a shared store already holds the state of another router (other
    LLMs, another bandit context): serving it would mix statistics of different models."""
    missing = [m for m in model.llms if m not in held.known]
    if missing or held.bandit.dim != model.bandit_prior.dim:
        raise ConfigError(
            "the state store holds the online state of another router "
            f"(LLMs not in it: {', '.join(missing) or 'none'}; bandit context "
            f"{held.bandit.dim} vs {model.bandit_prior.dim}): use another store prefix "
            "per router version, or clear it"
        )
