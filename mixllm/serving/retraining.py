"""The retraining trigger: start a retraining run once enough feedback has arrived since the
champion's training data (or the last trigger), at most once per minimum gap."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd

from mixllm.registry.feedback import FeedbackStore
from mixllm.serving.formatting import first_line, now_iso
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
        """Start a retraining run (in the background) when enough feedback arrived since the
        later of ``watermark`` (the champion's) and the last trigger."""
        if self.threshold <= 0 or self.trigger is None:
            return
        if self._starting.locked() or self._run_pending():
            return  # never a second run while one is being started, pending or running
        try:
            since = self._since(watermark)
            n = self.store.count_feedback(since)
            if n < self.threshold:
                return
            claim = self.store.claim_trigger(since, n, self.min_gap_s)
        except Exception as exc:  # the feedback is committed; retraining can wait for the next
            log.warning("retraining check failed: %s", exc)
            return
        if claim is None:
            return
        log.info("%d feedback rows since %s: starting a retraining run", n, since or "ever")
        if not self._starting.acquire(blocking=False):
            return
        threading.Thread(
            target=self._run, args=(claim, n, since), name="mixllm-retrain", daemon=True
        ).start()

    def _since(self, watermark: str | None) -> str | None:
        """The later of the champion's feedback watermark and the last trigger."""
        marks = [watermark, self.store.last_trigger()]
        stamps = [pd.Timestamp(m, tz="UTC") if _naive(m) else pd.Timestamp(m) for m in marks if m]
        return max(stamps).isoformat() if stamps else None

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

    def _run(self, claim: int, n: int, since: str | None) -> None:
        try:
            self._start(claim, n, since)
        finally:
            self._starting.release()

    def _start(self, claim: int, n: int, since: str | None) -> None:
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
        log.info(
            "retraining flow run %s started (%d feedback rows since %s)", run_id, n, since or "ever"
        )


def _naive(value: Any) -> bool:
    if isinstance(value, datetime):
        return value.tzinfo is None
    return pd.Timestamp(value).tzinfo is None
