"""``RoutingService``: one method per endpoint over a live champion router, free of any web
framework; ``flows/service.py`` is the thin BentoML/FastAPI edge over it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from mixllm.core.errors import InvalidRequestError, MixLLMError, NotFoundError
from mixllm.core.paths import mixllm_home
from mixllm.core.prices import load_prices
from mixllm.core.tokens import count_tokens
from mixllm.registry.feedback import FeedbackStore, redact_url
from mixllm.routing.router import as_batch
from mixllm.serving import openai_compat
from mixllm.serving.backends import BackendRegistry, LLMRoute, prompt_text
from mixllm.serving.candidates import (
    Overrides,
    add_to_router,
    backend_for,
    check_active,
    eligible,
    price_spec,
)
from mixllm.serving.champion import (
    Champion,
    ChampionSlot,
    ChampionSource,
    LastLoaded,
    RegistrySource,
)
from mixllm.serving.chat import ChatForwarder
from mixllm.serving.concurrency import EncodeBatcher, InFlight
from mixllm.serving.embeddings import QueryEmbeddings
from mixllm.serving.metrics import scrape_text, service_metrics
from mixllm.serving.requests import (
    AddLLMRequest,
    ChatRequest,
    FeedbackRequest,
    RouteRequest,
    chat_query,
)
from mixllm.serving.retraining import RetrainTrigger, RunActive, Trigger
from mixllm.serving.settings import ServiceSettings

log = logging.getLogger(__name__)


class RoutingService:
    """Routing, chat forwarding, feedback and candidate management over a live champion."""

    def __init__(
        self,
        settings: ServiceSettings | None = None,
        *,
        source: ChampionSource | None = None,
        store: FeedbackStore | None = None,
        backends: BackendRegistry | None = None,
        trigger: Trigger | None = None,
        run_active: RunActive | None = None,
        load: bool = True,
    ) -> None:
        self.settings = s = settings or ServiceSettings.from_env()
        self.store = store or FeedbackStore(s.feedback_url)
        self.backends = backends or BackendRegistry.from_yaml(s.backends_path)
        self.trigger = trigger
        self.metrics = service_metrics()
        self.inflight = InFlight()
        self.embeddings = QueryEmbeddings(s.embed_cache_size)
        self.batcher = EncodeBatcher(s.batch_max, s.batch_wait_ms, self.embeddings)
        self._swap_lock = threading.Lock()  # candidate changes vs. the swap
        self._overrides = Overrides.from_backends(self.backends)
        self.slot = ChampionSlot(
            source or RegistrySource(s.model_name, s.tracking_uri),
            prepare=self._overrides.apply,
            swap_lock=self._swap_lock,
            retry_failed_s=max(60.0, 10 * s.poll_s),
            last_loaded=LastLoaded(mixllm_home() / "service" / f"last-loaded-{s.model_name}.json"),
        )
        self.retrainer = RetrainTrigger(
            self.store,
            trigger,
            self.metrics,
            threshold=s.retrain_threshold,
            min_gap_s=s.retrain_min_gap_s,
            deployment=s.retrain_deployment,
            active=run_active,
        )
        self.chats = ChatForwarder(self.backends, self.inflight, self.metrics, self._price)
        self._default_prices: Any = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        if load:
            self.check_champion()

    @property
    def source(self) -> ChampionSource:
        """Where champions come from."""
        return self.slot.source

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the champion watcher (every ``poll_s``) and warm the replay backends."""
        if self.settings.poll_s > 0 and self._watcher is None:
            self._watcher = threading.Thread(
                target=self._watch, name="mixllm-champion-watcher", daemon=True
            )
            self._watcher.start()
        threading.Thread(target=self._warm_backends, name="mixllm-warm", daemon=True).start()

    def stop(self) -> None:
        """Stop background threads and release the database pool."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = None
        self.batcher.close()
        self.store.close()

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.poll_s):
            try:
                self.check_champion()
            except Exception:  # the watcher must survive anything and try again
                log.exception("champion check failed")

    def _warm_backends(self) -> None:
        for llm in self._known_llms():
            backend, _ = self.backends.resolve(llm)
            warm = getattr(backend, "llms", None)
            if warm is None:
                continue
            try:
                warm()
            except MixLLMError as exc:
                log.warning("backend %s cannot serve yet: %s", backend.name, exc)
            return

    def _known_llms(self) -> list[str]:
        champion = self.slot.current
        return list(champion.router.all_llms_) if champion else []

    # -- champion ----------------------------------------------------------------------
    @property
    def champion(self) -> Champion:
        """The router serving now; UnavailableError while none could be loaded."""
        return self.slot.get()

    def check_champion(self) -> bool:
        """Load the registry's champion if it changed; True if a new router now serves
        (see ``ChampionSlot.check``)."""
        return self.slot.check()

    # -- runtime candidate changes -----------------------------------------------------
    def list_llms(self) -> dict[str, Any]:
        """Every LLM the router knows: active or not, prices, backend, requests in flight."""
        champion = self.champion
        counts = self.inflight.snapshot()
        return {
            "llms": [
                self._describe_llm(champion.router, llm, counts)
                for llm in champion.router.all_llms_
            ],
            "reference_llm": getattr(champion.router, "reference_llm_", None),
            "router_version": self.champion.version,
        }

    def _describe_llm(self, router: Any, llm: str, counts: dict[str, int]) -> dict[str, Any]:
        spec = price_spec(router, llm)
        return {
            "name": llm,
            "active": llm in router.llms_,
            "input_price": spec.input_price if spec else None,
            "output_price": spec.output_price if spec else None,
            "tokens_per_s": spec.tokens_per_s if spec else None,
            "concurrency": self._concurrency(llm),
            "in_flight": counts.get(llm, 0),
            **self.backends.describe(llm),
        }

    def add_llm(self, req: AddLLMRequest) -> dict[str, Any]:
        """Make ``req.name`` a candidate now, answered by the named (or declared) backend."""
        if req.name in self.champion.router.llms_:
            raise InvalidRequestError(f"LLM {req.name!r} is already a candidate")
        backend = backend_for(req, self.backends)
        with self._swap_lock:
            router = self.champion.router
            add_to_router(router, req)
            self.backends.set_route(LLMRoute(name=req.name, backend=backend, model=req.model))
            self._overrides.record_added(req)
        log.info("LLM %s added (backend %s)", req.name, backend)
        return {"added": req.name, **self.backends.describe(req.name), "llms": router.llms_}

    def remove_llm(self, name: str) -> dict[str, Any]:
        """Stop routing to ``name`` at once."""
        with self._swap_lock:
            router = self.champion.router
            if name not in router.llms_:
                raise NotFoundError(
                    f"LLM {name!r} is not a candidate; active: {', '.join(router.llms_)}"
                )
            router.remove_llm(name)
            self._overrides.record_removed(name)
        log.info("LLM %s removed", name)
        return {"removed": name, "llms": list(router.llms_)}

    def _concurrency(self, llm: str) -> int:
        route = next((r for r in self.backends.routes() if r.name == llm), None)
        if route is not None and route.concurrency:
            return route.concurrency
        spec = price_spec(self.champion.router, llm)
        return int(spec.concurrency) if spec else 1

    def _price(self, llm: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        spec = price_spec(self.champion.router, llm)
        if spec is None:
            return None
        return float(spec.input_price * prompt_tokens + spec.output_price * completion_tokens)

    # -- routing -----------------------------------------------------------------------
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
        champion = self.champion  # in-flight requests keep the router they started with
        t0 = time.perf_counter()
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
            queue=self.inflight.queue_state(router, self._concurrency),
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

    def route(self, req: RouteRequest) -> dict[str, Any]:
        """POST /route."""
        return self.decide(
            req.query,
            budget_pct=None if req.budget is None else req.budget * 100.0,
            budget_usd=req.budget_usd,
            candidates=req.candidates,
        )

    # -- chat --------------------------------------------------------------------------
    def _chat_decision(self, req: ChatRequest) -> dict[str, Any]:
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

    async def chat(self, req: ChatRequest) -> dict[str, Any]:
        """POST /v1/chat/completions without streaming."""
        decision = await asyncio.to_thread(self._chat_decision, req)
        return await self.chats.complete(decision, req.forward_body())

    async def chat_stream(self, req: ChatRequest) -> AsyncIterator[bytes]:
        """POST /v1/chat/completions with stream=true: route, open the backend stream (errors
        raise here, before any byte is sent), then return the SSE byte stream."""
        decision = await asyncio.to_thread(self._chat_decision, req)
        return await self.chats.stream(decision, req.forward_body())

    # -- feedback ----------------------------------------------------------------------
    def feedback(self, req: FeedbackRequest) -> dict[str, Any]:
        """POST /feedback: commit it, then learn from it online; 2xx means committed.

        One feedback per request_id: a repeat raises DuplicateFeedbackError (HTTP 409) before
        anything is stored or learned, so it never moves the router twice."""
        record = self.store.add_feedback(
            req.request_id,
            quality=req.quality,
            thumbs_up=req.thumbs_up,
            cost=req.cost,
            latency_s=req.latency_s,
        )
        self.metrics.feedback.labels(kind="quality" if req.quality is not None else "thumbs").inc()
        applied, note = self._learn(record.query, record.llm, req)
        champion = self.slot.current
        self.retrainer.maybe_start(champion.watermark if champion else None)
        return {
            "request_id": req.request_id,
            "stored": True,
            "applied": applied,
            "note": note,
            "llm": record.llm,
            "router_version": champion.version if champion else None,
        }

    def _learn(self, query: str, llm: str, req: FeedbackRequest) -> tuple[bool, str | None]:
        """Online update of the serving router; a failure never loses the stored row."""
        champion = self.slot.current
        if champion is None:
            return False, "no router loaded: stored for the next training run only"
        try:
            champion.router.update(
                query,
                llm,
                quality=req.quality,
                thumbs_up=req.thumbs_up,
                cost=req.cost,
                latency_s=req.latency_s,
            )
        except Exception as exc:  # the row is committed: the answer must stay a 2xx
            log.warning("feedback stored but not applied online: %s", exc, exc_info=True)
            return False, f"stored; not applied online: {type(exc).__name__}: {exc}"
        return True, None

    # -- health and metrics ------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """GET /healthz: what serves, how it was loaded, how much feedback is stored."""
        champion = self.slot.current
        feedback_count, store_error = self._feedback_count()
        return {
            "status": self._health_status(),
            "router_version": champion.version if champion else None,
            "feedback_count": feedback_count,
            "champion": {
                "source": self.slot.describe_source(),
                "loaded_at": champion.loaded_at if champion else None,
                "watermark": champion.watermark if champion else None,
                **self.slot.status,
            },
            "llms": list(champion.router.llms_) if champion else [],
            "in_flight": self.inflight.snapshot(),
            "feedback_store": {"url": redact_url(self.store.url), "error": store_error},
            "retraining": self.retrainer.describe(),
        }

    def ready(self) -> bool:
        """True while a router is loaded and can serve (BentoML's /readyz)."""
        return self.slot.current is not None

    def models(self) -> dict[str, Any]:
        """GET /v1/models: ``mixllm`` (routed) and the active candidates, OpenAI's list shape."""
        champion = self.champion
        names = [openai_compat.MODEL_PREFIX, *champion.router.llms_]
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "mixllm"}
                for name in names
            ],
        }

    def _health_status(self) -> str:
        """ok: the registry's champion serves; degraded: another version serves (a failed
        load, a fallback, a deleted alias); unavailable: nothing can serve."""
        if self.slot.current is None:
            return "unavailable"
        return "ok" if self.slot.ok else "degraded"

    def _feedback_count(self) -> tuple[int | None, str | None]:
        """(feedback rows stored, None) or (None, why the store cannot say)."""
        try:
            return self.store.count_feedback(), None
        except MixLLMError as exc:
            return None, str(exc)

    def metrics_text(self, content: str = "") -> str:
        """``content`` (BentoML's exposition) plus our instruments and scrape-time gauges."""
        champion = self.slot.current
        return scrape_text(
            content,
            self.metrics,
            feedback_rows=self._feedback_count()[0],
            champion_ok=self.slot.ok,
            version=champion.version if champion else None,
            in_flight=self.inflight.snapshot(),
        )
