"""The champion router: where it comes from (the MLflow registry) and its hot swap.

A new champion is loaded beside the serving one (requests keep flowing); the swap itself is
one reference assignment, and requests already running finish on the router they started
with. A version that fails to load leaves the current router serving; the failure is
reported in the status and retried after a while.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from mixllm.core.errors import NotFittedError, UnavailableError
from mixllm.registry.feedback import redact_url
from mixllm.serving.formatting import first_line, now_iso

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    """A loaded router and where it came from."""

    router: Any
    version: str
    watermark: str | None = None  # feedback up to this instant is in its training data
    loaded_at: str = field(default_factory=now_iso)


class ChampionSource(Protocol):
    """Where the champion router comes from (the MLflow registry in production)."""

    def current_version(self) -> str | None:
        """The version behind the champion alias, None if there is none."""
        ...

    def load(self, version: str) -> Any:
        """The router of ``version``."""
        ...

    def watermark(self, version: str) -> str | None:
        """The feedback watermark of ``version`` (ISO time), None if it has none."""
        ...


class RegistrySource:
    """The ``champion`` alias of a model in the MLflow registry."""

    def __init__(self, model_name: str = "mixllm-router", uri: str | None = None) -> None:
        self.model_name = model_name
        self.uri = uri

    def current_version(self) -> str | None:
        """Version aliased champion (RegistryError if the store is unreachable)."""
        from mixllm.registry import stores as registry

        return registry.current_alias_version(self.model_name, registry.CHAMPION, self.uri)

    def load(self, version: str) -> Any:
        """Load a registered version's router."""
        from mixllm.registry import stores as registry

        return registry.load_version(self.model_name, version, self.uri)[0]

    def watermark(self, version: str) -> str | None:
        """The version's feedback watermark tag."""
        from mixllm.registry import stores as registry

        mv = registry.client(self.uri).get_model_version(self.model_name, version)
        return mv.tags.get(registry.TAG_WATERMARK)

    def describe(self) -> str:
        """Model name and store, password hidden."""
        from mixllm.registry import stores as registry

        return f"{self.model_name}@champion in {redact_url(self.uri or registry.tracking_uri())}"


def check_router(router: Any) -> None:
    """Raise NotFittedError unless ``router`` can be served: fitted, with candidates."""
    for attr in ("llms_", "all_llms_", "encoder_", "tagger_"):
        if not hasattr(router, attr):
            raise NotFittedError(f"loaded object is not a fitted router (no {attr})")
    if not router.llms_:
        raise NotFittedError("loaded router has no candidate LLM")


class ChampionSlot:
    """The champion serving now, swapped for the source's champion whenever that changes.

    ``prepare`` runs on a freshly loaded router under ``swap_lock``, just before the swap
    (the service re-applies its runtime candidate changes there).
    """

    def __init__(
        self,
        source: ChampionSource,
        *,
        prepare: Callable[[Any], None],
        swap_lock: AbstractContextManager[Any],
        retry_failed_s: float = 60.0,
    ) -> None:
        self.source = source
        self.retry_failed_s = retry_failed_s
        self.status: dict[str, Any] = {"state": "not loaded", "error": None}
        self._prepare = prepare
        self._swap_lock = swap_lock
        self._champion: Champion | None = None
        self._failed: dict[str, float] = {}  # version -> when it failed to load
        self._check_lock = threading.Lock()  # one champion check at a time

    @property
    def current(self) -> Champion | None:
        """The champion serving now, None while none could be loaded."""
        return self._champion

    @property
    def ok(self) -> bool:
        """True if the registry's champion is the router serving."""
        return self._champion is not None and self.status.get("state") == "ok"

    def get(self) -> Champion:
        """The champion serving now; UnavailableError while none could be loaded."""
        champion = self._champion
        if champion is None:
            raise UnavailableError(
                f"no router loaded yet ({self.status.get('error') or self.status['state']}); "
                "train one with `mixllm pipeline`"
            )
        return champion

    def describe_source(self) -> str:
        """Where champions come from, as the source describes itself."""
        return getattr(self.source, "describe", lambda: "custom")()

    def check(self) -> bool:
        """Load the source's champion if it changed; True if a new router now serves."""
        with self._check_lock:
            self.status["checked_at"] = now_iso()
            try:
                version = self.source.current_version()
            except Exception as exc:
                return self._load_failed(None, exc, "cannot read the champion alias")
            if not self._wanted(version):
                return False
            assert version is not None
            try:
                router = self.source.load(version)
                check_router(router)
                watermark = self.source.watermark(version)
            except Exception as exc:
                return self._load_failed(version, exc, f"cannot load champion v{version}")
            self._swap(router, version, watermark)
            return True

    def _wanted(self, version: str | None) -> bool:
        """True if ``version`` should be loaded now: new, and not a recent failure."""
        current = self._champion.version if self._champion else None
        if version is None:
            if current is None:
                self.status.update(state="no champion", error="the registry has no champion")
            return False
        if version == current:
            return False
        failed_at = self._failed.get(version)
        return failed_at is None or time.time() - failed_at >= self.retry_failed_s

    def _swap(self, router: Any, version: str, watermark: str | None) -> None:
        current = self._champion.version if self._champion else None
        with self._swap_lock:  # no candidate change may slip between prepare and swap
            self._prepare(router)
            self._champion = Champion(router, version, watermark)
        self._failed.pop(version, None)
        self.status.update(
            state="ok", error=None, failed_version=None, version=version, loaded_at=now_iso()
        )
        log.info("serving champion v%s (was %s)", version, current or "none")

    def _load_failed(self, version: str | None, exc: Exception, what: str) -> bool:
        message = f"{what}: {type(exc).__name__}: {first_line(exc)}"
        if version is not None:
            self._failed[version] = time.time()
        state = "degraded" if self._champion else "no champion"
        self.status.update(state=state, error=message, failed_version=version)
        if self._champion:
            log.error("%s; still serving v%s", message, self._champion.version)
        else:
            log.error("%s; no router to serve", message)
        return False
