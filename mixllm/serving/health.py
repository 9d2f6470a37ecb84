"""``ServiceHealth``: what the service reports about itself: /healthz, readiness, /v1/models
and the Prometheus scrape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixllm.core.errors import MixLLMError
from mixllm.registry.feedback import FeedbackStore
from mixllm.registry.messages import public_url
from mixllm.serving import openai_compat
from mixllm.serving.champion import ChampionSlot
from mixllm.serving.inflight import InFlight
from mixllm.serving.metrics import ServiceMetrics, scrape_text
from mixllm.serving.retraining import RetrainTrigger
from mixllm.serving.shared_state import ServiceState


@dataclass(eq=False)
class ServiceHealth:
    """Read-only reports on the champion slot, the feedback store and requests in flight."""

    slot: ChampionSlot
    store: FeedbackStore
    inflight: InFlight
    metrics: ServiceMetrics
    retrainer: RetrainTrigger
    state: ServiceState | None = None  # the shared online state (None: not checked)

    def health(self) -> dict[str, Any]:
        """GET /healthz: what serves, how it was loaded, how much feedback is stored."""
        champion = self.slot.current
        feedback_count, store_error = self._feedback_count()
        state_error = self._state_error()
        return {
            "status": "unavailable" if state_error else self._health_status(),
            "router_version": champion.version if champion else None,
            "feedback_count": feedback_count,
            "champion": {
                "source": self.slot.describe_source(),
                "loaded_at": champion.loaded_at if champion else None,
                "watermark": champion.watermark if champion else None,
                **self.slot.status,
            },
            "llms": list(champion.router.llms_) if champion and not state_error else [],
            "in_flight": self.inflight.snapshot(),
            "state_store": {
                "url": public_url(self.state.url) if self.state else None,
                "error": state_error,
                "in_flight_sharing_error": self.inflight.error,
            },
            "feedback_store": {"url": public_url(self.store.url), "error": store_error},
            "retraining": self.retrainer.describe(),
        }

    def ready(self) -> bool:
        """True while a router is loaded and its shared state can be read (BentoML's
        /readyz): a replica whose state store is unreachable or corrupted leaves rotation."""
        return self.slot.current is not None and self._state_error() is None

    def models(self) -> dict[str, Any]:
        """GET /v1/models: ``mixllm`` (routed) and the active candidates, OpenAI's list shape."""
        champion = self.slot.get()
        names = [openai_compat.MODEL_PREFIX, *champion.router.llms_]
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "mixllm"}
                for name in names
            ],
        }

    def metrics_text(self, content: str = "") -> str:
        """``content`` (BentoML's exposition) plus our instruments and scrape-time gauges."""
        champion = self.slot.current
        return scrape_text(
            content,
            self.metrics,
            feedback_rows=self._feedback_count()[0],
            champion_ok=self.slot.ok,
            version=champion.version if champion else None,
            in_flight=self.inflight.local(),  # summed by Prometheus over the workers
        )

    def _health_status(self) -> str:
        """ok: the registry's champion serves; degraded: another version serves (a failed
        load, a fallback, a deleted alias); unavailable: nothing can serve."""
        if self.slot.current is None:
            return "unavailable"
        return "ok" if self.slot.ok else "degraded"

    def _state_error(self) -> str | None:
        """None while the shared state reads well, else why it does not."""
        if self.state is None:
            return None
        champion = self.slot.current
        return self.state.check(champion.router if champion else None)

    def _feedback_count(self) -> tuple[int | None, str | None]:
        """(feedback rows stored, None) or (None, why the store cannot say)."""
        try:
            return self.store.count_feedback(), None
        except MixLLMError as exc:
            return None, str(exc)
