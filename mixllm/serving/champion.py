"""The champion router: where it comes from (the MLflow registry) and its hot swap.

A new champion is loaded beside the serving one (requests keep flowing); the swap itself is
one reference assignment, and requests already running finish on the router they started
with. A version that fails to load leaves the current router serving; the failure is
reported in the status and retried after a while.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mixllm.core.errors import NotFittedError, UnavailableError, first_line
from mixllm.registry.messages import public_url
from mixllm.serving.formatting import now_iso

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

    def __init__(
        self,
        model_name: str = "mixllm-router",
        uri: str | None = None,
        encoder_threads: int | None = None,
    ) -> None:
        self.model_name = model_name
        self.uri = uri
        self.encoder_threads = (
            encoder_threads  # loaded on these (0: one per core; None: as trained)
        )

    def current_version(self) -> str | None:
        """Version aliased champion (RegistryError if the store is unreachable)."""
        from mixllm.registry import stores as registry

        return registry.current_alias_version(self.model_name, registry.CHAMPION, self.uri)

    def load(self, version: str) -> Any:
        """Load a registered version's router."""
        from mixllm.registry import stores as registry

        return registry.load_version(self.model_name, version, self.uri, self.encoder_threads)[0]

    def watermark(self, version: str) -> str | None:
        """The version's feedback watermark tag."""
        from mixllm.registry import stores as registry

        mv = registry.client(self.uri).get_model_version(self.model_name, version)
        return mv.tags.get(registry.TAG_WATERMARK)

    def earlier_versions(self, version: str) -> list[str]:
        """Registered versions older than ``version``, newest first."""
        from mixllm.registry import stores as registry

        found = registry.client(self.uri).search_model_versions(f"name='{self.model_name}'")
        older = [int(mv.version) for mv in found if int(mv.version) < int(version)]
        return [str(v) for v in sorted(older, reverse=True)]

    def describe(self) -> str:
        """Model name and store, password hidden."""
        from mixllm.registry import stores as registry

        return f"{self.model_name}@champion in {public_url(self.uri or registry.tracking_uri())}"


MAX_FALLBACKS = 5  # earlier versions tried when the champion cannot load at start


class LastLoaded:
    """The version that last loaded, recorded in a small local file (survives restarts)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> str | None:
        """The recorded version, None if none (or unreadable)."""
        try:
            return str(json.loads(self.path.read_text())["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, version: str) -> None:
        """Record ``version`` (atomically; a failure only costs the fallback)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"version": version, "at": now_iso()}))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot record the loaded version in %s: %s", self.path, exc)


def check_router(router: Any) -> None:
    """Raise NotFittedError unless ``router`` can be served: fitted, with candidates."""
    for attr in ("llms_", "all_llms_", "encoder_", "tagger_"):
        if not hasattr(router, attr):
            raise NotFittedError(f"loaded object is not a fitted router (no {attr})")
    if not router.llms_:
        raise NotFittedError("loaded router has no candidate LLM")


class ChampionSlot:
    """The champion serving now, swapped for the source's champion whenever that changes.

    ``ready(router)`` runs first on a freshly loaded router, outside any lock (slow work such
    as warming its encoder must not hold up candidate changes). ``prepare(router, version)``
    then runs under ``swap_lock``, just before the swap, and returns the router to serve (the
    service puts it on the shared online state of that version and re-applies the runtime
    candidate changes there).
    """

    def __init__(
        self,
        source: ChampionSource,
        *,
        prepare: Callable[[Any, str], Any],
        swap_lock: AbstractContextManager[Any],
        ready: Callable[[Any], None] | None = None,
        retry_failed_s: float = 60.0,
        last_loaded: LastLoaded | None = None,
    ) -> None:
        self.source = source
        self.last_loaded = last_loaded
        self.retry_failed_s = retry_failed_s
        self.status: dict[str, Any] = {"state": "not loaded", "error": None}
        self._prepare = prepare
        self._ready = ready
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
                self._swap(router, version, watermark)  # prepare may fail: the state store
            except Exception as exc:
                return self._load_failed(version, exc, f"cannot load champion v{version}")
            return True

    def _wanted(self, version: str | None) -> bool:
        """True if ``version`` should be loaded now: new, and not a recent failure. Also keeps
        the status in step with the registry: the alias back on the serving version (a
        rollback) is ok again; an alias that is gone is reported, not shown as ok."""
        current = self._champion.version if self._champion else None
        if version is None:
            if current is None:
                self.status.update(state="no champion", error="the registry has no champion")
            else:
                self.status.update(
                    state="degraded",
                    error=f"the registry has no champion alias any more; still serving v{current}",
                    failed_version=None,
                )
            return False
        if version == current:
            if self.status.get("state") != "ok":
                log.info("the champion alias is back on v%s, the version serving", version)
                self.status.update(state="ok", error=None, failed_version=None, fallback=None)
            return False
        failed_at = self._failed.get(version)
        return failed_at is None or time.time() - failed_at >= self.retry_failed_s

    def _swap(
        self, router: Any, version: str, watermark: str | None, *, fallback: bool = False
    ) -> None:
        current = self._champion.version if self._champion else None
        if self._ready is not None:
            self._ready(router)
        with self._swap_lock:  # no candidate change may slip between prepare and swap
            router = self._prepare(router, version)
            self._champion = Champion(router, version, watermark)
        self._failed.pop(version, None)
        self.status.update(
            state="fallback" if fallback else "ok",
            error=None,
            failed_version=None,
            version=version,
            loaded_at=now_iso(),
            fallback=(
                f"serving v{version}, the last version that loaded, not the champion"
                if fallback
                else None
            ),
        )
        if self.last_loaded is not None:
            self.last_loaded.write(version)
        log.info("serving champion v%s (was %s)", version, current or "none")

    def _load_failed(self, version: str | None, exc: Exception, what: str) -> bool:
        # The status is public (/healthz): it names the version, the log has the details
        # (exception class, paths, store URLs).
        log.error("%s: %s: %s", what, type(exc).__name__, first_line(exc))
        message = f"{what} (details in the service log)"
        if version is not None:
            self._failed[version] = time.time()
        if self._champion is None and self._load_fallback(version):
            self.status.update(error=message, failed_version=version)
            return True
        state = "degraded" if self._champion else "no champion"
        self.status.update(state=state, error=message, failed_version=version)
        if self._champion:
            log.error("%s; still serving v%s", what, self._champion.version)
        else:
            log.error("%s; no router to serve", what)
        return False

    def _load_fallback(self, failed: str | None) -> bool:
        """Serve the last version that loaded (recorded locally, else the registry's newest
        earlier versions) when the champion cannot load at start: not a full outage."""
        for version in self._fallback_versions(failed):
            try:
                router = self.source.load(version)
                check_router(router)
                watermark = self.source.watermark(version)
                self._swap(router, version, watermark, fallback=True)
            except Exception as exc:
                log.warning("fallback v%s cannot load either: %s", version, first_line(exc))
                continue
            log.warning("the champion cannot load: serving the last loadable v%s", version)
            return True
        return False

    def _fallback_versions(self, failed: str | None) -> list[str]:
        versions = []
        if self.last_loaded is not None:
            recorded = self.last_loaded.read()
            if recorded:
                versions.append(recorded)
        earlier = getattr(self.source, "earlier_versions", None)
        if earlier is not None and failed is not None:
            try:
                versions += earlier(failed)
            except Exception as exc:  # the registry may be what is failing
                log.warning("cannot list earlier versions: %s", first_line(exc))
        return [v for v in dict.fromkeys(versions) if v != failed][:MAX_FALLBACKS]
