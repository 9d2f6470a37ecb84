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

from mixllm.core.paths import mixllm_home
from mixllm.routing.shared_state import MemoryDocs, SharedStateStore, VersionedDocs, update_doc
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
    ``memory://`` -> this process only; anything else -> a SQLAlchemy database."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from mixllm.routing.redis_state import RedisDocs

        return RedisDocs.from_url(url)
    if url.startswith(MEMORY_URL):
        return MemoryDocs()
    from mixllm.serving.sql_docs import SQLDocs

    return SQLDocs(url)


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
        merged = Overrides(dict(self.base.added), set(doc.get("removed", [])))
        for name, raw in doc.get("added", {}).items():
            merged.added[name] = AddLLMRequest.model_validate(raw)
        for name in merged.removed:
            merged.added.pop(name, None)
        self._seen = (version, merged)
        return merged

    def record_added(self, req: AddLLMRequest) -> None:
        """Remember that ``req.name`` was added (with its resolved backend)."""

        def change(doc: dict[str, Any] | None) -> tuple[dict[str, Any], None]:
            doc = doc or {"added": {}, "removed": []}
            doc["added"][req.name] = req.model_dump(mode="json")
            doc["removed"] = [n for n in doc["removed"] if n != req.name]
            return doc, None

        update_doc(self.docs, self.key, change)

    def record_removed(self, name: str) -> None:
        """Remember that ``name`` was removed."""

        def change(doc: dict[str, Any] | None) -> tuple[dict[str, Any], None]:
            doc = doc or {"added": {}, "removed": []}
            doc["added"].pop(name, None)
            doc["removed"] = sorted({*doc["removed"], name})
            return doc, None

        update_doc(self.docs, self.key, change)

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
            use_store(SharedStateStore(self.docs, self.router_key(version)))
        self.overrides.apply(router)
        return router

    def close(self) -> None:
        """Stop sharing in-flight counts and release the store's connections."""
        self.inflight.stop()
        close = getattr(self.docs, "close", None)
        if close is not None:
            close()
