"""``ChampionWatcher``: the service's background threads: the champion watcher, which loads a
new champion every ``poll_s`` seconds, and the one-off warm-up of the replay backends."""

from __future__ import annotations

import logging
import threading

from mixllm.core.errors import MixLLMError
from mixllm.serving.backends import BackendRegistry
from mixllm.serving.champion import ChampionSlot

log = logging.getLogger(__name__)


class ChampionWatcher:
    """Polls the champion source in a daemon thread until stopped."""

    def __init__(self, slot: ChampionSlot, backends: BackendRegistry, poll_s: float) -> None:
        self.slot = slot
        self.backends = backends
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the watcher (when ``poll_s`` > 0) and warm the backends in the background."""
        if self.poll_s > 0 and self._thread is None:
            self._thread = threading.Thread(
                target=self._watch, name="mixllm-champion-watcher", daemon=True
            )
            self._thread.start()
        threading.Thread(target=self._warm_backends, name="mixllm-warm", daemon=True).start()

    def stop(self) -> None:
        """Stop the watcher and wait for it (10 s at most)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.slot.check()
            except Exception:  # the watcher must survive anything and try again
                log.exception("champion check failed")

    def _warm_backends(self) -> None:
        """Load the first backend that can list its LLMs (the replay recordings), once."""
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
