"""``RoutingService``: the facade with one method per endpoint that ``flows/service.py`` (the
thin BentoML/FastAPI edge) calls. It builds the collaborators and delegates to them, one job
each: ``RouteDecider`` (decisions.py), ``ChatForwarder`` (chat.py), ``FeedbackIntake``
(feedback_intake.py), ``CandidateAdmin`` (candidate_admin.py), ``ServiceHealth`` (health.py)
and ``ChampionWatcher`` (watcher.py), all over one ``ChampionSlot`` (champion.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from mixllm.core.paths import mixllm_home
from mixllm.registry.feedback import FeedbackStore
from mixllm.serving.backends import BackendRegistry
from mixllm.serving.candidate_admin import CandidateAdmin
from mixllm.serving.champion import (
    Champion,
    ChampionSlot,
    ChampionSource,
    LastLoaded,
    RegistrySource,
)
from mixllm.serving.chat import ChatForwarder
from mixllm.serving.concurrency import EncodeBatcher
from mixllm.serving.decisions import RouteDecider
from mixllm.serving.embeddings import QueryEmbeddings
from mixllm.serving.feedback_intake import FeedbackIntake
from mixllm.serving.health import ServiceHealth
from mixllm.serving.metrics import service_metrics
from mixllm.serving.requests import AddLLMRequest, ChatRequest, FeedbackRequest, RouteRequest
from mixllm.serving.retraining import RetrainTrigger, RunActive, Trigger
from mixllm.serving.settings import ServiceSettings
from mixllm.serving.shared_state import ServiceState, default_state_url
from mixllm.serving.watcher import ChampionWatcher


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
        # what serving changes (candidates, bandit, scales, in-flight), shared by workers
        self.state = ServiceState(
            s.state_url or default_state_url(), s.model_name, self.backends, s.state_namespace
        )
        self.inflight = self.state.inflight
        self.embeddings = QueryEmbeddings(s.embed_cache_size)
        self.batcher = EncodeBatcher(s.batch_max, s.batch_wait_ms, self.embeddings)
        swap_lock = threading.Lock()  # candidate changes vs. the swap
        self.slot = ChampionSlot(
            source
            or RegistrySource(
                s.model_name,
                s.tracking_uri,
                0 if s.encoder_threads is None else s.encoder_threads,
            ),
            # a new champion: on its version's shared state, with the runtime changes
            prepare=self.state.prepare,
            swap_lock=swap_lock,
            ready=self._ready,
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
        self.candidates = CandidateAdmin(
            self.slot, self.backends, self.inflight, self.state.overrides, swap_lock
        )
        self.decider = RouteDecider(
            self.slot,
            self.backends,
            self.batcher,
            self.inflight,
            self.store,
            self.metrics,
            self.candidates.concurrency,
        )
        self.chats = ChatForwarder(
            self.backends, self.inflight, self.metrics, self.candidates.price
        )
        self.intake = FeedbackIntake(self.slot, self.store, self.metrics, self.retrainer)
        self.reports = ServiceHealth(
            self.slot, self.store, self.inflight, self.metrics, self.retrainer, self.state
        )
        self.watcher = ChampionWatcher(self.slot, self.backends, s.poll_s)
        self.candidates.refresh()  # routes of LLMs added before a restart or elsewhere
        if load:
            self.check_champion()

    def _ready(self, router: Any) -> None:
        """A new champion's served encoder on the service's thread count (the artifact's
        ``encoder.threads`` is a training setting), warmed now rather than on the first
        request. Runs before the swap lock is taken."""
        encoder = getattr(router, "encoder_", None)
        if hasattr(encoder, "use_threads"):
            encoder.use_threads(self.settings.encoder_threads)
            encoder.encode(["warm-up"], cache=False)

    @property
    def source(self) -> ChampionSource:
        """Where champions come from."""
        return self.slot.source

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the champion watcher (every ``poll_s``) and the in-flight heartbeat."""
        self.watcher.start()
        self.inflight.start()

    def stop(self) -> None:
        """Stop background threads and release the database pool."""
        self.watcher.stop()
        self.batcher.close()
        self.state.close()
        self.store.close()

    # -- champion ----------------------------------------------------------------------
    @property
    def champion(self) -> Champion:
        """The router serving now; UnavailableError while none could be loaded."""
        return self.slot.get()

    def check_champion(self) -> bool:
        """Load the registry's champion if it changed; True if a new router now serves
        (see ``ChampionSlot.check``)."""
        return self.slot.check()

    # -- routing and chat ----------------------------------------------------------------
    def decide(self, query: str, **options: Any) -> dict[str, Any]:
        """One routing decision, JSON-ready (see ``RouteDecider.decide`` for ``options``)."""
        return self.decider.decide(query, **options)

    def route(self, req: RouteRequest) -> dict[str, Any]:
        """POST /route."""
        return self.decider.route(req)

    async def chat(self, req: ChatRequest) -> dict[str, Any]:
        """POST /v1/chat/completions without streaming."""
        decision = await asyncio.to_thread(self._chat_decision, req)
        return await self.chats.complete(decision, req.forward_body())

    async def chat_stream(self, req: ChatRequest) -> AsyncIterator[bytes]:
        """POST /v1/chat/completions with stream=true: route, open the backend stream (errors
        raise here, before any byte is sent), then return the SSE byte stream."""
        decision = await asyncio.to_thread(self._chat_decision, req)
        return await self.chats.stream(decision, req.forward_body())

    def _chat_decision(self, req: ChatRequest) -> dict[str, Any]:
        self.candidates.refresh()  # an LLM added elsewhere is answered by its own backend
        return self.decider.chat_decision(req)

    # -- feedback ----------------------------------------------------------------------
    def feedback(self, req: FeedbackRequest) -> dict[str, Any]:
        """POST /feedback (see ``FeedbackIntake.feedback``)."""
        return self.intake.feedback(req)

    # -- runtime candidate changes -----------------------------------------------------
    def list_llms(self) -> dict[str, Any]:
        """GET /llms: every LLM the router knows (see ``CandidateAdmin.list_llms``)."""
        return self.candidates.list_llms()

    def add_llm(self, req: AddLLMRequest) -> dict[str, Any]:
        """POST /llms: a new candidate now."""
        return self.candidates.add_llm(req)

    def remove_llm(self, name: str) -> dict[str, Any]:
        """DELETE /llms/{name}: stop routing to ``name`` at once."""
        return self.candidates.remove_llm(name)

    # -- health and metrics ------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """GET /healthz (see ``ServiceHealth.health``)."""
        return self.reports.health()

    def ready(self) -> bool:
        """True while a router is loaded and can serve (BentoML's /readyz)."""
        return self.reports.ready()

    def models(self) -> dict[str, Any]:
        """GET /v1/models."""
        return self.reports.models()

    def metrics_text(self, content: str = "") -> str:
        """``content`` (BentoML's exposition) plus our instruments and scrape-time gauges."""
        return self.reports.metrics_text(content)
