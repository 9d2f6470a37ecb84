"""The service's mutable state, shared by every worker and replica that uses one state store.

Three kinds of document live in the store ``MIXLLM_STATE_URL`` names (``VersionedDocs``),
under the namespace ``MIXLLM_STATE_NAMESPACE`` (default ``mixllm``; one per service that
shares the store with others):

- ``<ns>:router:<model>:v<version>``: the online state of one champion version (candidate set,
  LinUCB statistics, cost / latency scales), read with one version lookup per request;
- ``<ns>:service:overrides``: the runtime candidate changes (LLMs added with their backend route,
  LLMs removed), service-wide: re-applied to every new champion, so a hot swap keeps them;
- ``<ns>:service:in-flight``: requests in flight per process (``mixllm.serving.inflight``).

The store is a SQLite file under ``$MIXLLM_HOME/service/`` by default (every worker of one
machine, survives restarts), any SQLAlchemy URL (e.g. PostgreSQL), ``redis://...`` for
replicas on several machines, or ``memory://`` (this process only, the old behaviour).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mixllm.core.errors import ConfigError, MixLLMError, StateStoreError
from mixllm.core.paths import mixllm_home
from mixllm.registry.messages import redact_url
from mixllm.routing.shared_state import MemoryDocs, SharedStateStore, VersionedDocs, update_doc
from mixllm.routing.state import OnlineState
from mixllm.serving.backends import BackendRegistry, LLMRoute
from mixllm.serving.candidates import Overrides
from mixllm.serving.inflight import InFlight, SharedInFlight
from mixllm.serving.requests import AddLLMRequest

log = logging.getLogger(__name__)

STATE_URL_ENV = "MIXLLM_STATE_URL"
MEMORY_URL = "memory://"


def default_state_url() -> str:
    """SQLite at ``$MIXLLM_HOME/service/state.db``."""
    return f"sqlite:///{mixllm_home() / 'service' / 'state.db'}"


def open_docs(url: str) -> VersionedDocs:
    """The document store ``url`` names: ``redis://``, ``rediss://``, ``unix://`` -> Redis;
    ``memory://`` -> this process only; anything else -> a SQLAlchemy database. Connects
    once: ``ConfigError`` for a URL no store answers to, ``StateStoreError`` for a store
    that cannot be reached (or refuses the credentials)."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from mixllm.routing.redis_state import RedisDocs

        _check_redis_db(url)
        return RedisDocs.from_url(url)
    if url.startswith(MEMORY_URL):
        return MemoryDocs()
    from mixllm.serving.sql_docs import SQLDocs

    return SQLDocs(url)


def _check_redis_db(url: str) -> None:
    """ConfigError unless the URL's database (its path, or ``?db=``) is a number: redis-py
    would silently use database 0 for ``redis://host/abc``."""
    parts = urlsplit(url)
    path = parts.path.strip("/") if parts.scheme != "unix" else ""
    dbs = [path] if path else []
    dbs += parse_qs(parts.query).get("db", [])
    bad = [db for db in dbs if not db.isdigit()]
    if bad:
        raise ConfigError(
            f"state store URL {redact_url(url)}: Redis database {bad[0]!r} is not a number "
            "(redis://host:port/<db number>)"
        )


class SharedOverrides:
    """Runtime candidate changes in the shared store, on top of the operator's priced LLMs."""

    def __init__(self, docs: VersionedDocs, key: str, base: Overrides) -> None:
        self.docs = docs
        self.key = key
        self.base = base
        self._seen: tuple[int | None, Overrides] = (None, base)

    def current(self) -> Overrides:
        """The effective changes: the backends file's LLMs, then every runtime change."""
        version = self.docs.version(self.key)
        if version is None:
            return self.base
        if version == self._seen[0]:
            return self._seen[1]
        got = self.docs.get(self.key)
        version, doc = got if got is not None else (None, {})
        added, removed = self._parse(doc)
        merged = Overrides({**self.base.added, **added}, removed)
        for name in merged.removed:
            merged.added.pop(name, None)
        self._seen = (version, merged)
        return merged

    def record_added(self, req: AddLLMRequest) -> None:
        """Remember that ``req.name`` was added (with its resolved backend)."""

        def change(doc: dict[str, Any] | None) -> tuple[dict[str, Any], None]:
            added, removed = self._parse(doc or {})
            added[req.name] = req
            return _overrides_doc(added, removed - {req.name}), None

        update_doc(self.docs, self.key, change)

    def record_removed(self, name: str) -> None:
        """Remember that ``name`` was removed."""

        def change(doc: dict[str, Any] | None) -> tuple[dict[str, Any], None]:
            added, removed = self._parse(doc or {})
            added.pop(name, None)
            return _overrides_doc(added, removed | {name}), None

        update_doc(self.docs, self.key, change)

    def _parse(self, doc: dict[str, Any]) -> tuple[dict[str, AddLLMRequest], set[str]]:
        """(added LLMs, removed names) of a stored document; ``StateStoreError`` naming the
        key and the fault when it is not an overrides document (a write never keeps it)."""
        try:
            raw_added, raw_removed = doc.get("added", {}), doc.get("removed", [])
            if not isinstance(raw_added, dict) or not isinstance(raw_removed, list):
                raise TypeError("'added' must be an object and 'removed' a list")
            added = {n: AddLLMRequest.model_validate(r) for n, r in raw_added.items()}
            if any(req.name != n for n, req in added.items()):
                raise ValueError("an 'added' entry names another LLM than its key")
            if not all(isinstance(n, str) for n in raw_removed):
                raise TypeError("'removed' must list LLM names")
        except (TypeError, ValueError) as exc:
            raise StateStoreError(
                f"overrides document {self.key!r} is malformed: {_one_line(exc)}"
            ) from None
        return added, set(raw_removed)

    def apply(self, router: Any) -> None:
        """Re-apply every change to a freshly loaded ``router``."""
        self.current().apply(router)

    def sync_routes(self, backends: BackendRegistry) -> None:
        """Give ``backends`` the route of every LLM added anywhere (one version lookup when
        nothing changed)."""
        routes = {r.name: (r.backend, r.model) for r in backends.routes()}
        for name, req in self.current().added.items():
            if req is self.base.added.get(name):
                continue  # the backends file's own route, prices and all
            backend = req.backend or backends.default_backend
            if routes.get(name) != (backend, req.model):
                backends.set_route(LLMRoute(name=name, backend=backend, model=req.model))


class ServiceState:
    """Where the service keeps what it changes while serving (see the module docstring)."""

    def __init__(
        self, url: str, model_name: str, backends: BackendRegistry, namespace: str = "mixllm"
    ) -> None:
        self.url = url
        self.model_name = model_name
        self.namespace = namespace
        self.docs = open_docs(url)
        base = Overrides.from_backends(backends)
        self.overrides = SharedOverrides(self.docs, f"{namespace}:service:overrides", base)
        self.inflight: InFlight = (
            InFlight()
            if isinstance(self.docs, MemoryDocs)
            else SharedInFlight(self.docs, f"{namespace}:service:in-flight")
        )

    def router_key(self, version: str) -> str:
        """The key of one registered version's online state."""
        return f"{self.namespace}:router:{self.model_name}:v{version}"

    def prepare(self, router: Any, version: str) -> Any:
        """``router`` (a freshly loaded champion ``version``) on the shared online state of
        that version, with the runtime candidate changes applied."""
        use_store = getattr(router, "use_store", None)
        if use_store is not None:
            key = self.router_key(version)
            use_store(SharedStateStore(self.docs, key, lambda: self._reseed(router, key)))
        self.overrides.apply(router)
        return router

    def _reseed(self, router: Any, key: str) -> None:
        """The state document of the serving champion is gone (the store was flushed or
        restarted without persistence, the key deleted): store the champion's initial state
        again with the service-wide overrides re-applied, so the next request is served."""
        model = router.model
        initial = OnlineState.initial(list(model.llms), model.bandit_prior)
        if self.docs.create(key, initial.to_dict(), initial.version):
            log.warning(
                "online state %r was missing (store flushed or restarted without persistence?): "
                "re-seeded from the loaded champion, its learned statistics start afresh",
                key,
            )
        self.overrides.apply(router)

    def check(self, router: Any | None) -> str | None:
        """None while the store answers and the serving ``router``'s state and the overrides
        read well; else what is wrong (for /healthz and /readyz)."""
        try:
            if router is not None:
                _ = router.llms_  # one version lookup; parses (or re-seeds) the state if needed
            self.overrides.current()
        except MixLLMError as exc:
            return str(exc)
        return None

    def close(self) -> None:
        """Stop sharing in-flight counts and release the store's connections."""
        self.inflight.stop()
        close = getattr(self.docs, "close", None)
        if close is not None:
            close()


def _overrides_doc(added: dict[str, AddLLMRequest], removed: set[str]) -> dict[str, Any]:
    return {
        "added": {n: req.model_dump(mode="json") for n, req in added.items()},
        "removed": sorted(removed),
    }


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
