"""The retraining trigger: start a retraining run once enough feedback has arrived after the
champion's training data (or the last trigger), at most once per minimum gap.

"After" is by feedback id (monotonic), never by wall-clock time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from mixllm.core.errors import first_line
from mixllm.registry.feedback import FeedbackStore, watermark_id
from mixllm.serving.formatting import now_iso
from mixllm.serving.metrics import ServiceMetrics

log = logging.getLogger(__name__)

Trigger = Callable[[dict[str, Any]], str]  # parameters -> flow run id
RunActive = Callable[[str], bool]  # flow run id -> still pending or running?


class RetrainTrigger:
    """Counts feedback since the last training and starts ``trigger`` past ``threshold``."""

    def __init__(
        self,
        store: FeedbackStore,
        trigger: Trigger | None,
        metrics: ServiceMetrics,
        *,
        threshold: int,
        min_gap_s: float,
        deployment: str,
        active: RunActive | None = None,
    ) -> None:
        self.store = store
        self.active = active
        self._starting = threading.Lock()  # held while a trigger call is under way
        self._pending_run: str | None = None  # the last run started
        self.trigger = trigger
        self.metrics = metrics
        self.threshold = threshold
        self.min_gap_s = min_gap_s
        self.deployment = deployment
        self.last: dict[str, Any] | None = None  # the last run started (or failed to start)

    def describe(self) -> dict[str, Any]:
        """JSON-ready state for /healthz."""
        return {
            "threshold": self.threshold,
            "deployment": self.deployment if self.trigger else None,
            "last": self.last,
            "pending_run": self._pending_run,
        }

    def maybe_start(self, watermark: str | None) -> None:
        """Start a retraining run (in the background) when at least ``threshold`` feedback
        rows have an id above both ``watermark`` (the largest feedback id in the champion's
        training data) and the largest id the last trigger covered."""
        if self.threshold <= 0 or self.trigger is None:
            return
        if self._starting.locked() or self._run_pending():
            return  # never a second run while one is being started, pending or running
        try:
            after = _later(watermark_id(watermark), self.store.last_trigger_feedback_id())
            n = self.store.count_feedback(after)
            if n < self.threshold:
                return
            claim = self.store.claim_trigger(self.store.max_feedback_id(), n, self.min_gap_s)
        except Exception as exc:  # the feedback is committed; retraining can wait for the next
            log.warning("retraining check failed: %s", exc)
            return
        if claim is None:
            return
        since = "ever" if after is None else f"feedback id {after}"
        log.info("%d feedback rows since %s: starting a retraining run", n, since)
        if not self._starting.acquire(blocking=False):
            return
        threading.Thread(
            target=self._run, args=(claim, n, since), name="mixllm-retrain", daemon=True
        ).start()

    def _run_pending(self) -> bool:
        """True while the last run started is still pending or running (unknown: True, so
        that an unreachable Prefect never leads to a second run)."""
        if self._pending_run is None or self.active is None:
            return False
        try:
            still = self.active(self._pending_run)
        except Exception as exc:
            log.warning("cannot tell whether run %s is finished: %s", self._pending_run, exc)
            return True
        if not still:
            self._pending_run = None
        return still

    def _run(self, claim: int, n: int, since: str) -> None:
        try:
            self._start(claim, n, since)
        finally:
            self._starting.release()

    def _start(self, claim: int, n: int, since: str) -> None:
        assert self.trigger is not None
        parameters = {"feedback_url": self.store.url}
        try:
            run_id = self.trigger(parameters)
        except Exception as exc:  # no Prefect server or deployment: keep serving, say so
            message = f"{type(exc).__name__}: {first_line(exc)}"
            log.warning("could not start the retraining run (%s); serving goes on", message)
            self.store.finish_trigger(claim, flow_run_id=None, error=message)
            self.metrics.retrain_triggers.labels(outcome="failed").inc()
            self.last = {"at": now_iso(), "feedback": n, "error": message}
            return
        self._pending_run = str(run_id)
        self.store.finish_trigger(claim, flow_run_id=str(run_id), error=None)
        self.metrics.retrain_triggers.labels(outcome="started").inc()
        self.last = {"at": now_iso(), "feedback": n, "flow_run_id": str(run_id)}
        log.info("retraining flow run %s started (%d feedback rows since %s)", run_id, n, since)


def _later(*ids: int | None) -> int | None:
    known = [i for i in ids if i is not None]
    return max(known) if known else None
