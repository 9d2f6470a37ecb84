"""``RouteDecider``: routing decisions of the live champion for /route and chat requests:
the eligible candidates, the embedding through the batcher, the decision log and metrics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mixllm.core.prices import load_prices
from mixllm.core.tokens import count_tokens
from mixllm.registry.feedback import FeedbackStore
from mixllm.routing.router import as_batch
from mixllm.routing.shared_state import pinned_state
from mixllm.serving import openai_compat
from mixllm.serving.backends import BackendRegistry, prompt_text
from mixllm.serving.candidates import check_active, eligible
from mixllm.serving.champion import ChampionSlot
from mixllm.serving.concurrency import EncodeBatcher
from mixllm.serving.inflight import InFlight
from mixllm.serving.metrics import ServiceMetrics
from mixllm.serving.requests import ChatRequest, RouteRequest, chat_query


@dataclass(eq=False)
class RouteDecider:
    """One routing decision per request, logged to the feedback store for later feedback."""

    slot: ChampionSlot
    backends: BackendRegistry
    batcher: EncodeBatcher
    inflight: InFlight
    store: FeedbackStore
    metrics: ServiceMetrics
    concurrency: Callable[[str], int]  # requests an LLM serves at once (queue penalty)
    _default_prices: Any = field(default=None, init=False, repr=False)

    def decide(
        self,
        query: str,
        *,
        budget_pct: float | None = None,
        budget_usd: float | None = None,
        candidates: list[str] | None = None,
        prompt_tokens: int | None = None,
        answer_tokens: int | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Route one query, log the decision, and return it JSON-ready with a request_id.

        Only LLMs that can take the request are candidates: its prompt (``prompt_tokens``,
        else the query's) plus ``answer_tokens`` fits their context window, and, for a chat
        ``body``, their backend honours its parameters. The answer's ``excluded`` says why
        each other LLM was left out."""
        champion = self.slot.get()  # in-flight requests keep the router they started with
        t0 = time.perf_counter()
        # one state snapshot for the whole request: one version lookup in a shared store
        with pinned_state(getattr(champion.router, "store", None)):
            if candidates is not None:
                check_active(champion.router, candidates)  # fail before paying for the embedding
            tokens = count_tokens(query) if prompt_tokens is None else prompt_tokens
            candidates, excluded = eligible(
                champion.router,
                self.backends,
                candidates,
                prompt_tokens=tokens,
                answer_tokens=answer_tokens or 0,
                body=body,
                fallback=self._packaged_prices(),
            )
            decision = self._decide(
                champion.router, query, budget_pct, budget_usd, candidates, prompt_tokens
            )
        seconds = time.perf_counter() - t0
        out = decision.to_dict()
        out.update(
            request_id=uuid.uuid4().hex,
            router_version=champion.version,
            decision_ms=round(seconds * 1000, 3),
            excluded=excluded,
        )
        self._log_decision(out, query, decision, budget_pct)
        self.metrics.decisions.labels(llm=decision.llm).inc()
        self.metrics.decision_seconds.observe(seconds)
        return out

    def route(self, req: RouteRequest) -> dict[str, Any]:
        """The decision for a POST /route body (``budget`` is a fraction, stored as percent)."""
        return self.decide(
            req.query,
            budget_pct=None if req.budget is None else req.budget * 100.0,
            budget_usd=req.budget_usd,
            candidates=req.candidates,
        )

    def chat_decision(self, req: ChatRequest) -> dict[str, Any]:
        """The decision for a chat request: budget from its model name, the whole chat paid."""
        query = chat_query(req)
        budget_pct = openai_compat.parse_model(req.model)
        messages = [m.model_dump(exclude_none=True) for m in req.messages]
        return self.decide(
            query,
            budget_pct=budget_pct,
            candidates=req.candidates,
            prompt_tokens=count_tokens(prompt_text(messages)),
            answer_tokens=req.answer_tokens(),
            body=req.forward_body(),
        )

    def _packaged_prices(self) -> Any:
        """The packaged price table: context windows of LLMs a router saved without them."""
        if self._default_prices is None:
            self._default_prices = load_prices()
        return self._default_prices

    def _decide(
        self,
        router: Any,
        query: str,
        budget_pct: float | None,
        budget_usd: float | None,
        candidates: list[str] | None,
        prompt_tokens: int | None,
    ) -> Any:
        """The router's Decision for one query, embedded through the batcher."""
        X, tags = self.batcher.encode(router, query)
        _, tokens = as_batch(query)
        if prompt_tokens is not None:
            tokens[0, 0] = float(prompt_tokens)  # the whole chat is paid for, not just the query
        # the router reads one snapshot of its online state: no lock against add/remove
        return router.decide(
            X,
            [tags],
            tokens,
            budget_usd=budget_usd,
            budget_pct=budget_pct,
            candidates=candidates,
            queue=self.inflight.queue_state(router, self.concurrency),
        )[0]

    def _log_decision(
        self, out: dict[str, Any], query: str, decision: Any, budget_pct: float | None
    ) -> None:
        self.store.log_decision(
            out["request_id"],
            query=query,
            llm=decision.llm,
            tags=list(decision.tags),
            router_version=out["router_version"],
            budget_usd=float(decision.budget_usd),
            budget_pct=budget_pct,
            candidates=out["candidates"],
            decision_ms=out["decision_ms"],
        )
