"""``FeedbackIntake``: POST /feedback: store it, learn from it online, maybe trigger a retrain."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from mixllm.registry.feedback import FeedbackStore
from mixllm.serving.champion import ChampionSlot
from mixllm.serving.metrics import ServiceMetrics
from mixllm.serving.requests import FeedbackRequest
from mixllm.serving.retraining import RetrainTrigger

log = logging.getLogger(__name__)


@dataclass(eq=False)
class FeedbackIntake:
    """Feedback on earlier decisions: committed first, then applied to the serving router."""

    slot: ChampionSlot
    store: FeedbackStore
    metrics: ServiceMetrics
    retrainer: RetrainTrigger

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
