"""The routing service's logic, free of any web framework: the live champion router and its
hot swap, in-flight tracking per LLM, request validation, the feedback loop and metrics.

``flows/service.py`` is a thin BentoML/FastAPI edge over ``RoutingService``: it parses HTTP,
calls one method per endpoint and turns domain errors into status codes with
``http_error``. Everything here is plain Python and testable without a server.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import queue as queue_mod
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from mixllm import openai_compat
from mixllm.backends import (
    BackendError,
    BackendRegistry,
    BackendSpec,
    BackendTimeoutError,
    LLMRoute,
    prompt_text,
)
from mixllm.errors import (
    ConfigError,
    InvalidRequestError,
    MixLLMError,
    NotFittedError,
    UnknownLLMError,
)
from mixllm.feedback import FeedbackStore, FeedbackStoreError, UnknownRequestError, redact_url
from mixllm.latency import QueueState
from mixllm.router import as_batch
from mixllm.tokens import count_tokens

log = logging.getLogger(__name__)

MAX_QUERY_CHARS_ENV = "MIXLLM_MAX_QUERY_CHARS"
DEFAULT_MAX_QUERY_CHARS = 20_000
MAX_BUDGET_FRACTION = openai_compat.MAX_BUDGET_FRACTION
MAX_BUDGET_USD = 100.0  # dollars per query: anything above is a typo
ENDPOINTS = ("/route", "/feedback", "/v1/chat/completions", "/llms", "/healthz", "/metrics")


# -- errors ----------------------------------------------------------------------------


class NotFoundError(MixLLMError, LookupError):
    """A named resource (an LLM to delete) does not exist."""


class UnavailableError(MixLLMError):
    """The service cannot answer yet: no router is loaded."""


def http_error(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, OpenAI error type) for an exception reaching the service edge."""
    table: list[tuple[type[BaseException], int, str]] = [
        (UnknownRequestError, 404, "not_found_error"),
        (NotFoundError, 404, "not_found_error"),
        (BackendTimeoutError, 504, "backend_timeout"),
        (BackendError, 502, "backend_error"),
        (UnavailableError, 503, "service_unavailable"),
        (NotFittedError, 503, "service_unavailable"),
        (FeedbackStoreError, 503, "service_unavailable"),
        (UnknownLLMError, 400, "invalid_request_error"),
        (InvalidRequestError, 400, "invalid_request_error"),
        (ConfigError, 400, "invalid_request_error"),
        (MixLLMError, 400, "invalid_request_error"),
    ]
    for kind, status, name in table:
        if isinstance(exc, kind):
            return status, name
    return 500, "internal_error"


def describe_validation(errors: list[dict[str, Any]]) -> str:
    """One message naming every invalid field of a request body."""
    parts = []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        where = ".".join(loc) or "body"
        if err.get("type") in ("json_invalid", "json_type"):
            return "request body is not valid JSON" + _ctx_error(err)
        if err.get("type") == "model_attributes_type":
            return "request body must be a JSON object (sent as Content-Type: application/json)"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts) or "invalid request"


def bad_param(errors: list[dict[str, Any]]) -> str | None:
    """The first invalid field's dotted name (OpenAI's ``param``), None for the whole body."""
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        if loc and err.get("type") not in ("json_invalid", "model_attributes_type"):
            return ".".join(loc)
    return None


def _ctx_error(err: dict[str, Any]) -> str:
    detail = (err.get("ctx") or {}).get("error")
    return f" ({detail})" if detail else ""


# -- settings --------------------------------------------------------------------------


def max_query_chars() -> int:
    """The longest query accepted: $MIXLLM_MAX_QUERY_CHARS, else 20,000 characters."""
    try:
        return int(os.environ.get(MAX_QUERY_CHARS_ENV, DEFAULT_MAX_QUERY_CHARS))
    except ValueError:
        return DEFAULT_MAX_QUERY_CHARS


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {os.environ.get(name)!r}") from exc


@dataclass
class ServiceSettings:
    """The service's knobs; ``from_env`` documents the environment variables."""

    model_name: str = "mixllm-router"
    tracking_uri: str | None = None  # None: mixllm.registry.tracking_uri()
    feedback_url: str | None = None  # None: mixllm.feedback.default_url()
    backends_path: str | None = None  # None: $MIXLLM_BACKENDS or the packaged file
    poll_s: float = 30.0  # how often to look for a new champion (0: never)
    retrain_threshold: int = 200  # new feedback rows that start a retraining run (0: never)
    retrain_min_gap_s: float = 600.0  # at most one retraining trigger per this many seconds
    retrain_deployment: str = "mixllm-retrain/mixllm-retrain"  # Prefect "<flow>/<deployment>"
    batch_max: int = 32  # most queries embedded together by the batcher
    batch_wait_ms: float = 2.0  # how long the batcher waits for company once busy

    @classmethod
    def from_env(cls) -> ServiceSettings:
        """Settings from MIXLLM_* environment variables (see docs/SERVICE.md)."""
        env = os.environ
        return cls(
            model_name=env.get("MIXLLM_MODEL_NAME", cls.model_name),
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            feedback_url=env.get("MIXLLM_FEEDBACK_URL") or None,
            backends_path=env.get("MIXLLM_BACKENDS") or None,
            poll_s=_env_float("MIXLLM_CHAMPION_POLL_S", cls.poll_s),
            retrain_threshold=int(_env_float("MIXLLM_RETRAIN_THRESHOLD", cls.retrain_threshold)),
            retrain_min_gap_s=_env_float("MIXLLM_RETRAIN_MIN_GAP_S", cls.retrain_min_gap_s),
            retrain_deployment=env.get("MIXLLM_RETRAIN_DEPLOYMENT", cls.retrain_deployment),
            batch_max=int(_env_float("MIXLLM_BATCH_MAX", cls.batch_max)),
            batch_wait_ms=_env_float("MIXLLM_BATCH_WAIT_MS", cls.batch_wait_ms),
        )


# -- request bodies --------------------------------------------------------------------


def _check_query(value: str) -> str:
    if not value.strip():
        raise ValueError("query is empty")
    limit = max_query_chars()
    if len(value) > limit:
        raise ValueError(f"query has {len(value)} characters, the limit is {limit}")
    return value


def _check_candidates(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if not value:
        raise ValueError("candidates is empty; omit it to consider every active LLM")
    if len(set(value)) != len(value):
        raise ValueError("candidates has duplicates")
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RouteRequest(_Body):
    """POST /route."""

    query: str = Field(description="The text to route.")
    budget: float | None = Field(
        None,
        gt=0,
        le=MAX_BUDGET_FRACTION,
        description="Budget per query as a fraction of the reference LLM's cost (0.25 = 25%).",
    )
    budget_usd: float | None = Field(
        None, gt=0, le=MAX_BUDGET_USD, description="Budget per query in dollars."
    )
    candidates: list[str] | None = Field(None, description="Restrict to these active LLMs.")

    _query = field_validator("query")(_check_query)
    _candidates = field_validator("candidates")(_check_candidates)

    @field_validator("budget", "budget_usd")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class FeedbackRequest(_Body):
    """POST /feedback."""

    request_id: str = Field(min_length=1, max_length=64)
    quality: float | None = Field(None, ge=0, le=1, description="Graded quality in [0, 1].")
    thumbs_up: bool | None = Field(None, description="Thumbs up (true) or down (false).")
    cost: float | None = Field(None, ge=0, description="What the call cost, $.")
    latency_s: float | None = Field(None, ge=0, description="End-to-end latency, seconds.")

    @model_validator(mode="after")
    def _one_signal(self) -> FeedbackRequest:
        if self.quality is None and self.thumbs_up is None:
            raise ValueError("give quality (a number in [0, 1]) or thumbs_up (true/false)")
        if self.quality is not None and self.thumbs_up is not None:
            raise ValueError("give quality or thumbs_up, not both")
        return self


class AddLLMRequest(_Body):
    """POST /llms: a new candidate, its prices and the backend that answers it."""

    name: str = Field(min_length=1, max_length=200)
    input_price: float = Field(ge=0, le=1, description="$ per prompt token.")
    output_price: float = Field(ge=0, le=1, description="$ per generated token.")
    backend: str | None = Field(None, description="A configured backend; default: the default.")
    model: str | None = Field(None, description="The id the backend knows the LLM by.")
    base_url: str | None = Field(None, description="Declare an OpenAI-compatible backend.")
    api_key_env: str | None = None
    timeout_s: float | None = Field(None, gt=0, le=3600)
    tokens_per_s: float | None = Field(None, gt=0)
    ttft_s: float | None = Field(None, ge=0)
    concurrency: int | None = Field(None, ge=1)
    prior_quality: float | None = Field(None, ge=0, le=1)


class ChatRequest(openai_compat.ChatCompletionRequest):
    """POST /v1/chat/completions: OpenAI's body plus optional ``candidates``."""

    candidates: list[str] | None = None

    _candidates = field_validator("candidates")(_check_candidates)

    def forward_body(self) -> dict[str, Any]:
        """What the backend gets: OpenAI fields only."""
        body = super().forward_body()
        body.pop("candidates", None)
        return body


# -- metrics ---------------------------------------------------------------------------


@dataclass
class ServiceMetrics:
    """Prometheus instruments of the service (process-wide, multiprocess-safe)."""

    registry: Any
    requests: Any
    decisions: Any
    decision_seconds: Any
    feedback: Any
    backend_errors: Any
    retrain_triggers: Any

    def exposition(self, already: str = "") -> str:
        """Our metric families in text format, leaving out those ``already`` shows."""
        from prometheus_client import generate_latest

        text = generate_latest(self.registry).decode("utf-8")
        blocks = ("\n" + text).split("\n# HELP ")[1:]
        names = [b.split(" ", 1)[0] for b in blocks]
        kept = [
            b
            for b, name in zip(blocks, names, strict=True)
            if not name.endswith("_created") and f"# TYPE {name} " not in already
        ]
        return "".join(f"# HELP {b.rstrip()}\n" for b in kept)


@cache
def service_metrics() -> ServiceMetrics:
    """The instruments, created once per process in a registry of their own.

    prometheus_client is imported here, not at module import: BentoML sets
    PROMETHEUS_MULTIPROC_DIR in each worker after importing the service module, and the
    client picks its storage mode when first imported. In multiprocess mode BentoML's
    /metrics aggregates these across workers; otherwise ``exposition`` adds them.
    """
    from prometheus_client import CollectorRegistry, Counter, Histogram

    registry = CollectorRegistry(auto_describe=True)
    return ServiceMetrics(
        registry=registry,
        requests=Counter(
            "mixllm_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=registry,
        ),
        decisions=Counter(
            "mixllm_decisions", "Routing decisions by chosen LLM", ["llm"], registry=registry
        ),
        decision_seconds=Histogram(
            "mixllm_decision_seconds",
            "Time to take one routing decision (embedding included)",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        ),
        feedback=Counter("mixllm_feedback", "Feedback rows committed", ["kind"], registry=registry),
        backend_errors=Counter(
            "mixllm_backend_errors", "Backend failures", ["backend", "kind"], registry=registry
        ),
        retrain_triggers=Counter(
            "mixllm_retrain_triggers",
            "Retraining runs requested",
            ["outcome"],
            registry=registry,
        ),
    )


def endpoint_label(path: str) -> str | None:
    """The metrics label of a request path (bounded set), None for paths we do not count."""
    if path in ENDPOINTS:
        return path
    if path.startswith("/llms/"):
        return "/llms/{name}"
    return None


def count_request(path: str, status: int) -> None:
    """Count one HTTP request on one of our endpoints."""
    label = endpoint_label(path)
    if label is not None:
        service_metrics().requests.labels(endpoint=label, status=str(status)).inc()


# -- in-flight requests ----------------------------------------------------------------


class InFlight:
    """Requests being answered per LLM, fed to the router as queueing state."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def track(self, llm: str) -> Iterator[None]:
        """Count one request on ``llm`` for the duration of the block."""
        self.enter(llm)
        try:
            yield
        finally:
            self.leave(llm)

    def enter(self, llm: str) -> None:
        """One more request on ``llm``."""
        with self._lock:
            self._counts[llm] = self._counts.get(llm, 0) + 1

    def leave(self, llm: str) -> None:
        """One request on ``llm`` finished."""
        with self._lock:
            self._counts[llm] = max(0, self._counts.get(llm, 0) - 1)

    def snapshot(self) -> dict[str, int]:
        """LLM -> requests in flight."""
        with self._lock:
            return {k: v for k, v in self._counts.items() if v}

    def queue_state(self, router: Any, concurrency: Callable[[str], int]) -> dict[str, QueueState]:
        """QueueState of every active LLM of ``router``."""
        counts = self.snapshot()
        return {
            llm: QueueState(in_flight=counts.get(llm, 0), concurrency=concurrency(llm))
            for llm in router.llms_
        }


# -- the champion ----------------------------------------------------------------------


@dataclass(frozen=True)
class Champion:
    """A loaded router and where it came from."""

    router: Any
    version: str
    watermark: str | None = None  # feedback up to this instant is in its training data
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


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
        from mixllm import registry

        return registry.current_alias_version(self.model_name, registry.CHAMPION, self.uri)

    def load(self, version: str) -> Any:
        """Load a registered version's router."""
        from mixllm import registry

        return registry.load_version(self.model_name, version, self.uri)[0]

    def watermark(self, version: str) -> str | None:
        """The version's feedback watermark tag."""
        from mixllm import registry

        mv = registry.client(self.uri).get_model_version(self.model_name, version)
        return mv.tags.get(registry.TAG_WATERMARK)

    def describe(self) -> str:
        """Model name and store, password hidden."""
        from mixllm import registry

        return f"{self.model_name}@champion in {redact_url(self.uri or registry.tracking_uri())}"


# -- embedding batcher -----------------------------------------------------------------


@dataclass
class _EncodeJob:
    router: Any
    text: str
    future: Future = field(default_factory=Future)


class EncodeBatcher:
    """Embeds concurrent queries together: one encoder pass serves many requests.

    An idle batcher encodes a lone query at once; while it is busy, queries queue up and
    the next pass takes up to ``max_batch`` of them (waiting at most ``wait_ms`` for more).
    """

    def __init__(self, max_batch: int = 32, wait_ms: float = 2.0) -> None:
        self.max_batch = max(1, max_batch)
        self.wait_s = max(0.0, wait_ms) / 1000
        self._queue: queue_mod.Queue[_EncodeJob | None] = queue_mod.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.encoded = 0

    def encode(self, router: Any, text: str) -> tuple[np.ndarray, list[str]]:
        """(embedding row (1, d), tags) of ``text`` under ``router``'s encoder and tagger."""
        self._ensure_thread()
        job = _EncodeJob(router, text)
        self._queue.put(job)
        return job.future.result()

    def close(self) -> None:
        """Stop the worker thread."""
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join(timeout=5)
                self._thread = None

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="mixllm-encode-batcher", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            deadline = time.perf_counter() + self.wait_s
            while len(jobs) < self.max_batch:
                try:
                    timeout = max(0.0, deadline - time.perf_counter())
                    nxt = self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
                except queue_mod.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                jobs.append(nxt)
            self._process(jobs)

    def _process(self, jobs: list[_EncodeJob]) -> None:
        # A hot swap can put two routers in one batch: each group uses its own encoder.
        groups: dict[int, list[_EncodeJob]] = {}
        for job in jobs:
            groups.setdefault(id(job.router), []).append(job)
        for group in groups.values():
            router = group[0].router
            texts = [j.text for j in group]
            try:
                X = router.encoder_.encode(texts)
                tags = router.tagger_.tag(texts, X)
            except BaseException as exc:  # the waiting requests must hear about any failure
                for j in group:
                    j.future.set_exception(exc)
                continue
            self.batches += 1
            self.encoded += len(group)
            for i, j in enumerate(group):
                j.future.set_result((X[i : i + 1], tags[i]))


# -- the service -----------------------------------------------------------------------


Trigger = Callable[[dict[str, Any]], str]  # parameters -> flow run id


class ReadWriteLock:
    """Many readers or one writer: routing reads the candidate set, POST/DELETE /llms write it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def read(self) -> Iterator[None]:
        """Hold a shared lock for the block."""
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        """Hold the exclusive lock for the block (waits for running readers)."""
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._writer = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class _Overrides:
    """Candidate-set changes made at runtime, re-applied to every new champion."""

    added: dict[str, AddLLMRequest] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)


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
        load: bool = True,
    ) -> None:
        self.settings = settings or ServiceSettings.from_env()
        s = self.settings
        self.source = source or RegistrySource(s.model_name, s.tracking_uri)
        self.store = store or FeedbackStore(s.feedback_url)
        self.backends = backends or BackendRegistry.from_yaml(s.backends_path)
        self.trigger = trigger
        self.metrics = service_metrics()
        self.inflight = InFlight()
        self.batcher = EncodeBatcher(s.batch_max, s.batch_wait_ms)
        self._champion: Champion | None = None
        self._swap_lock = threading.Lock()  # candidate changes vs. the swap
        # add_llm/remove_llm mutate the router's candidate tables in place; a decision must
        # not read them half-changed.
        self._candidates_lock = ReadWriteLock()
        self._check_lock = threading.Lock()  # one champion check at a time
        self._overrides = _Overrides()
        self._status: dict[str, Any] = {"state": "not loaded", "error": None}
        self._failed: dict[str, float] = {}  # version -> when it failed to load
        self._retrain: dict[str, Any] = {"last": None}
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._init_overrides()
        if load:
            self.check_champion()

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the champion watcher (every ``poll_s``) and warm the replay backends."""
        if self.settings.poll_s > 0 and self._watcher is None:
            self._watcher = threading.Thread(
                target=self._watch, name="mixllm-champion-watcher", daemon=True
            )
            self._watcher.start()
        threading.Thread(target=self._warm_backends, name="mixllm-warm", daemon=True).start()

    def stop(self) -> None:
        """Stop background threads and release the database pool."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = None
        self.batcher.close()
        self.store.close()

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.poll_s):
            try:
                self.check_champion()
            except Exception:  # the watcher must survive anything and try again
                log.exception("champion check failed")

    def _warm_backends(self) -> None:
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
        champion = self._champion
        return list(champion.router.all_llms_) if champion else []

    # -- champion loading and hot swap ------------------------------------------------
    @property
    def champion(self) -> Champion:
        """The router serving now; UnavailableError while none could be loaded."""
        champion = self._champion
        if champion is None:
            raise UnavailableError(
                f"no router loaded yet ({self._status.get('error') or self._status['state']}); "
                "train one with `mixllm pipeline`"
            )
        return champion

    def check_champion(self) -> bool:
        """Load the registry's champion if it changed; True if a new router now serves.

        Loading happens beside the serving router (requests keep flowing); the swap itself
        is one reference assignment, and requests already running finish on the router
        they started with. A version that fails to load leaves the current router serving;
        the failure is reported in ``health()`` and retried after a while.
        """
        with self._check_lock:
            self._status["checked_at"] = _now_iso()
            try:
                version = self.source.current_version()
            except Exception as exc:
                return self._load_failed(None, exc, "cannot read the champion alias")
            current = self._champion.version if self._champion else None
            if version is None:
                if current is None:
                    self._status.update(state="no champion", error="the registry has no champion")
                return False
            if version == current:
                return False
            failed_at = self._failed.get(version)
            if failed_at is not None and time.time() - failed_at < self._retry_failed_s():
                return False
            try:
                router = self.source.load(version)
                self._check_router(router)
                watermark = self.source.watermark(version)
            except Exception as exc:
                return self._load_failed(version, exc, f"cannot load champion v{version}")
            with self._swap_lock:  # no candidate change may slip between apply and swap
                self._apply_overrides(router)
                self._champion = Champion(router, version, watermark)
            self._failed.pop(version, None)
            self._status.update(
                state="ok", error=None, failed_version=None, version=version, loaded_at=_now_iso()
            )
            log.info("serving champion v%s (was %s)", version, current or "none")
            return True

    def _retry_failed_s(self) -> float:
        return max(60.0, 10 * self.settings.poll_s)

    @staticmethod
    def _check_router(router: Any) -> None:
        """A router we can serve: fitted, with candidates."""
        for attr in ("llms_", "all_llms_", "encoder_", "tagger_"):
            if not hasattr(router, attr):
                raise NotFittedError(f"loaded object is not a fitted router (no {attr})")
        if not router.llms_:
            raise NotFittedError("loaded router has no candidate LLM")

    def _load_failed(self, version: str | None, exc: Exception, what: str) -> bool:
        message = f"{what}: {type(exc).__name__}: {_first_line(exc)}"
        if version is not None:
            self._failed[version] = time.time()
        state = "degraded" if self._champion else "no champion"
        self._status.update(state=state, error=message, failed_version=version)
        if self._champion:
            log.error("%s; still serving v%s", message, self._champion.version)
        else:
            log.error("%s; no router to serve", message)
        return False

    # -- runtime candidate changes -----------------------------------------------------
    def _init_overrides(self) -> None:
        """LLMs priced in the backends file become candidates of every champion."""
        for route in self.backends.routes():
            if route.input_price is None or route.output_price is None:
                continue
            self._overrides.added[route.name] = AddLLMRequest(
                name=route.name,
                input_price=route.input_price,
                output_price=route.output_price,
                backend=route.backend,
                model=route.model,
                tokens_per_s=route.tokens_per_s,
                concurrency=route.concurrency,
            )

    def _apply_overrides(self, router: Any) -> None:
        for name, req in self._overrides.added.items():
            if name in router.llms_:
                continue
            try:
                router.add_llm(
                    name,
                    input_price=req.input_price,
                    output_price=req.output_price,
                    tokens_per_s=req.tokens_per_s,
                    ttft_s=req.ttft_s,
                    concurrency=req.concurrency,
                    prior_quality=req.prior_quality,
                )
            except MixLLMError as exc:
                log.warning("cannot re-add LLM %s to the new router: %s", name, exc)
        for name in self._overrides.removed:
            if name in router.llms_ and len(router.llms_) > 1:
                router.remove_llm(name)

    def list_llms(self) -> dict[str, Any]:
        """Every LLM the router knows: active or not, prices, backend, requests in flight."""
        router = self.champion.router
        counts = self.inflight.snapshot()
        out = []
        for llm in router.all_llms_:
            spec = _spec(router, llm)
            out.append(
                {
                    "name": llm,
                    "active": llm in router.llms_,
                    "input_price": spec.input_price if spec else None,
                    "output_price": spec.output_price if spec else None,
                    "tokens_per_s": spec.tokens_per_s if spec else None,
                    "concurrency": self._concurrency(llm),
                    "in_flight": counts.get(llm, 0),
                    **self.backends.describe(llm),
                }
            )
        return {
            "llms": out,
            "reference_llm": getattr(router, "reference_llm_", None),
            "router_version": self.champion.version,
        }

    def add_llm(self, req: AddLLMRequest) -> dict[str, Any]:
        """Make ``req.name`` a candidate now, answered by the named (or declared) backend."""
        if req.name in self.champion.router.llms_:
            raise InvalidRequestError(f"LLM {req.name!r} is already a candidate")
        backend, spec = self._backend_for(req)
        with self._swap_lock, self._candidates_lock.write():
            router = self.champion.router
            router.add_llm(
                req.name,
                input_price=req.input_price,
                output_price=req.output_price,
                tokens_per_s=req.tokens_per_s,
                ttft_s=req.ttft_s,
                concurrency=req.concurrency,
                prior_quality=req.prior_quality,
            )
            if spec is not None:
                self.backends.add_backend(spec)
            self.backends.set_route(LLMRoute(name=req.name, backend=backend, model=req.model))
            self._overrides.added[req.name] = req
            self._overrides.removed.discard(req.name)
        log.info("LLM %s added (backend %s)", req.name, backend)
        return {"added": req.name, **self.backends.describe(req.name), "llms": router.llms_}

    def _backend_for(self, req: AddLLMRequest) -> tuple[str, BackendSpec | None]:
        """(backend name, spec of a new OpenAI-compatible backend to declare, if asked)."""
        if req.base_url:
            own = f"{req.name}-endpoint"  # the LLM's own backend: re-adding replaces it
            name = req.backend or own
            if name != own and name in {b["name"] for b in self.backends.describe_all()}:
                raise InvalidRequestError(
                    f"backend {name!r} exists already: omit base_url to use it, or name a "
                    "new backend"
                )
            spec = BackendSpec(
                name=name,
                kind="openai",
                base_url=req.base_url,
                api_key_env=req.api_key_env,
                timeout_s=req.timeout_s or 60.0,
            )
            return name, spec
        name = req.backend or self.backends.default_backend
        self.backends.backend(name)  # InvalidRequestError for an unknown backend
        return name, None

    def remove_llm(self, name: str) -> dict[str, Any]:
        """Stop routing to ``name`` at once."""
        with self._swap_lock, self._candidates_lock.write():
            router = self.champion.router
            if name not in router.llms_:
                raise NotFoundError(
                    f"LLM {name!r} is not a candidate; active: {', '.join(router.llms_)}"
                )
            router.remove_llm(name)
            self._overrides.added.pop(name, None)
            self._overrides.removed.add(name)
        log.info("LLM %s removed", name)
        return {"removed": name, "llms": list(router.llms_)}

    def _concurrency(self, llm: str) -> int:
        route = next((r for r in self.backends.routes() if r.name == llm), None)
        if route is not None and route.concurrency:
            return route.concurrency
        spec = _spec(self.champion.router, llm)
        return int(spec.concurrency) if spec else 1

    # -- routing -----------------------------------------------------------------------
    def decide(
        self,
        query: str,
        *,
        budget_pct: float | None = None,
        budget_usd: float | None = None,
        candidates: list[str] | None = None,
        prompt_tokens: int | None = None,
    ) -> dict[str, Any]:
        """Route one query, log the decision, and return it JSON-ready with a request_id."""
        champion = self.champion  # in-flight requests keep the router they started with
        router = champion.router
        t0 = time.perf_counter()
        if candidates is not None:
            _check_active(router, candidates)  # fail before paying for the embedding
        X, tags = self.batcher.encode(router, query)
        _, tokens = as_batch(query)
        if prompt_tokens is not None:
            tokens[0, 0] = float(prompt_tokens)  # the whole chat is paid for, not just the query
        with self._candidates_lock.read():
            decision = router.decide(
                X,
                [tags],
                tokens,
                budget_usd=budget_usd,
                budget_pct=budget_pct,
                candidates=candidates,
                queue=self.inflight.queue_state(router, self._concurrency),
            )[0]
        seconds = time.perf_counter() - t0
        request_id = uuid.uuid4().hex
        out = decision.to_dict()
        out.update(
            request_id=request_id,
            router_version=champion.version,
            decision_ms=round(seconds * 1000, 3),
        )
        self.store.log_decision(
            request_id,
            query=query,
            llm=decision.llm,
            tags=list(decision.tags),
            router_version=champion.version,
            budget_usd=float(decision.budget_usd),
            budget_pct=budget_pct,
            candidates=out["candidates"],
            decision_ms=out["decision_ms"],
        )
        self.metrics.decisions.labels(llm=decision.llm).inc()
        self.metrics.decision_seconds.observe(seconds)
        return out

    def route(self, req: RouteRequest) -> dict[str, Any]:
        """POST /route."""
        return self.decide(
            req.query,
            budget_pct=None if req.budget is None else req.budget * 100.0,
            budget_usd=req.budget_usd,
            candidates=req.candidates,
        )

    # -- chat --------------------------------------------------------------------------
    def _chat_decision(self, req: ChatRequest) -> dict[str, Any]:
        query = req.query()
        if not query.strip():
            raise InvalidRequestError("messages: no user message with text to route")
        limit = max_query_chars()
        if len(query) > limit:
            raise InvalidRequestError(
                f"messages: the last user message has {len(query)} characters, the limit is {limit}"
            )
        budget_pct = openai_compat.parse_model(req.model)
        messages = [m.model_dump(exclude_none=True) for m in req.messages]
        return self.decide(
            query,
            budget_pct=budget_pct,
            candidates=req.candidates,
            prompt_tokens=count_tokens(prompt_text(messages)),
        )

    def _routing_field(self, decision: dict[str, Any]) -> dict[str, Any]:
        keep = ("request_id", "router_version", "tags", "candidates", "decision_ms", "budget_usd")
        return {k: decision[k] for k in keep if k in decision}

    async def chat(self, req: ChatRequest) -> dict[str, Any]:
        """POST /v1/chat/completions without streaming."""
        decision = await asyncio.to_thread(self._chat_decision, req)
        llm = decision["llm"]
        backend, model = self.backends.resolve(llm)
        with self.inflight.track(llm):
            try:
                reply = await backend.complete(llm, model, req.forward_body())
            except BackendError as exc:
                self._count_backend_error(backend.name, exc)
                raise
        cost = reply.cost_usd
        if cost is None:
            cost = self._price(llm, reply.prompt_tokens, reply.completion_tokens)
        routing = self._routing_field(decision)
        routing.update(
            backend=reply.detail or {"backend": backend.name},
            cost_usd=cost,
            latency_s=round(reply.latency_s, 4),
            recorded_quality=reply.quality,
        )
        return openai_compat.build_response(
            reply, llm=llm, request_id=decision["request_id"], mixllm=routing
        )

    async def chat_stream(self, req: ChatRequest) -> AsyncIterator[bytes]:
        """POST /v1/chat/completions with stream=true: route, open the backend stream (errors
        raise here, before any byte is sent), then return the SSE byte stream."""
        decision = await asyncio.to_thread(self._chat_decision, req)
        llm = decision["llm"]
        backend, model = self.backends.resolve(llm)
        self.inflight.enter(llm)
        try:
            stream = await backend.open_stream(llm, model, req.forward_body())
        except BaseException as exc:
            self.inflight.leave(llm)
            if isinstance(exc, BackendError):
                self._count_backend_error(backend.name, exc)
            raise
        routing = self._routing_field(decision)
        routing.update(
            backend=stream.detail or {"backend": backend.name},
            cost_usd=stream.cost_usd,
            recorded_quality=stream.quality,
        )
        return self._sse(stream.chunks, llm, decision["request_id"], routing, backend.name)

    async def _sse(
        self,
        chunks: AsyncIterator[dict[str, Any]],
        llm: str,
        request_id: str,
        routing: dict[str, Any],
        backend: str,
    ) -> AsyncIterator[bytes]:
        created = int(time.time())
        first = True
        try:
            async for piece in chunks:
                yield openai_compat.sse(
                    openai_compat.chunk(
                        piece,
                        llm=llm,
                        request_id=request_id,
                        created=created,
                        mixllm=routing if first else None,
                    )
                )
                first = False
        except BackendError as exc:
            # Headers are gone already: the error travels as a last event, like OpenAI's.
            self._count_backend_error(backend, exc)
            status, kind = http_error(exc)
            yield openai_compat.sse(openai_compat.error_body(str(exc), kind=kind, code=str(status)))
        finally:
            self.inflight.leave(llm)
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()  # a client that hung up must not keep the backend connection
        yield openai_compat.SSE_DONE

    def _count_backend_error(self, backend: str, exc: BackendError) -> None:
        kind = "timeout" if isinstance(exc, BackendTimeoutError) else "error"
        self.metrics.backend_errors.labels(backend=backend, kind=kind).inc()
        log.warning("backend failure: %s", exc)

    def _price(self, llm: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        spec = _spec(self.champion.router, llm)
        if spec is None:
            return None
        return float(spec.input_price * prompt_tokens + spec.output_price * completion_tokens)

    # -- feedback ----------------------------------------------------------------------
    def feedback(self, req: FeedbackRequest) -> dict[str, Any]:
        """POST /feedback: commit it, then learn from it online; 2xx means committed."""
        record = self.store.add_feedback(
            req.request_id,
            quality=req.quality,
            thumbs_up=req.thumbs_up,
            cost=req.cost,
            latency_s=req.latency_s,
        )
        self.metrics.feedback.labels(kind="quality" if req.quality is not None else "thumbs").inc()
        applied, note = self._learn(record.query, record.llm, req)
        self._maybe_retrain()
        return {
            "request_id": req.request_id,
            "stored": True,
            "applied": applied,
            "note": note,
            "llm": record.llm,
            "router_version": self._champion.version if self._champion else None,
        }

    def _learn(self, query: str, llm: str, req: FeedbackRequest) -> tuple[bool, str | None]:
        """Online update of the serving router; a failure never loses the stored row."""
        champion = self._champion
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

    # -- retraining trigger -------------------------------------------------------------
    def _maybe_retrain(self) -> None:
        """Start a retraining run when enough feedback arrived since the last training."""
        threshold = self.settings.retrain_threshold
        if threshold <= 0 or self.trigger is None:
            return
        try:
            since = self._retrain_since()
            n = self.store.count_feedback(since)
            if n < threshold:
                return
            claim = self.store.claim_trigger(since, n, self.settings.retrain_min_gap_s)
        except Exception as exc:  # the feedback is committed; retraining can wait for the next
            log.warning("retraining check failed: %s", exc)
            return
        if claim is None:
            return
        log.info("%d feedback rows since %s: starting a retraining run", n, since or "ever")
        threading.Thread(
            target=self._run_trigger, args=(claim, n, since), name="mixllm-retrain", daemon=True
        ).start()

    def _retrain_since(self) -> str | None:
        """The later of the champion's feedback watermark and the last trigger."""
        champion = self._champion
        marks = [champion.watermark if champion else None, self.store.last_trigger()]
        stamps = [pd.Timestamp(m, tz="UTC") if _naive(m) else pd.Timestamp(m) for m in marks if m]
        return max(stamps).isoformat() if stamps else None

    def _run_trigger(self, claim: int, n: int, since: str | None) -> None:
        assert self.trigger is not None
        parameters = {"feedback_url": self.store.url}
        try:
            run_id = self.trigger(parameters)
        except Exception as exc:  # no Prefect server or deployment: keep serving, say so
            message = f"{type(exc).__name__}: {_first_line(exc)}"
            log.warning("could not start the retraining run (%s); serving goes on", message)
            self.store.finish_trigger(claim, flow_run_id=None, error=message)
            self.metrics.retrain_triggers.labels(outcome="failed").inc()
            self._retrain["last"] = {"at": _now_iso(), "feedback": n, "error": message}
            return
        self.store.finish_trigger(claim, flow_run_id=str(run_id), error=None)
        self.metrics.retrain_triggers.labels(outcome="started").inc()
        self._retrain["last"] = {"at": _now_iso(), "feedback": n, "flow_run_id": str(run_id)}
        log.info(
            "retraining flow run %s started (%d feedback rows since %s)", run_id, n, since or "ever"
        )

    # -- health and metrics ------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """GET /healthz: what serves, how it was loaded, how much feedback is stored."""
        champion = self._champion
        try:
            feedback_count: int | None = self.store.count_feedback()
            store_error = None
        except MixLLMError as exc:
            feedback_count, store_error = None, str(exc)
        status = "ok" if champion and self._status.get("state") == "ok" else "degraded"
        if champion is None:
            status = "unavailable"
        return {
            "status": status,
            "router_version": champion.version if champion else None,
            "feedback_count": feedback_count,
            "champion": {
                "source": getattr(self.source, "describe", lambda: "custom")(),
                "loaded_at": champion.loaded_at if champion else None,
                "watermark": champion.watermark if champion else None,
                **self._status,
            },
            "llms": list(champion.router.llms_) if champion else [],
            "in_flight": self.inflight.snapshot(),
            "feedback_store": {"url": redact_url(self.store.url), "error": store_error},
            "retraining": {
                "threshold": self.settings.retrain_threshold,
                "deployment": self.settings.retrain_deployment if self.trigger else None,
                **self._retrain,
            },
        }

    def metrics_text(self, content: str = "") -> str:
        """``content`` (BentoML's exposition) plus our instruments and scrape-time gauges."""
        champion = self._champion
        lines = [content.rstrip("\n")] if content.strip() else []
        ours = self.metrics.exposition(content).rstrip("\n")
        if ours:
            lines.append(ours)
        try:
            rows = self.store.count_feedback()
            lines += [
                "# HELP mixllm_feedback_rows Feedback rows in the store (all workers).",
                "# TYPE mixllm_feedback_rows gauge",
                f"mixllm_feedback_rows {rows}",
            ]
        except MixLLMError:
            pass
        ok = 1 if champion and self._status.get("state") == "ok" else 0
        lines += [
            "# HELP mixllm_champion_ok 1 if the registry's champion is the router serving.",
            "# TYPE mixllm_champion_ok gauge",
            f"mixllm_champion_ok {ok}",
        ]
        if champion:
            lines += [
                "# HELP mixllm_router_version Version of the router serving (as a label).",
                "# TYPE mixllm_router_version gauge",
                f'mixllm_router_version{{version="{champion.version}"}} 1',
            ]
        counts = self.inflight.snapshot()
        lines += [
            "# HELP mixllm_in_flight Requests being answered per LLM (this worker).",
            "# TYPE mixllm_in_flight gauge",
        ]
        lines += [f'mixllm_in_flight{{llm="{_label(k)}"}} {v}' for k, v in sorted(counts.items())]
        return "\n".join(lines) + "\n"


# -- helpers ---------------------------------------------------------------------------


def _check_active(router: Any, candidates: list[str]) -> None:
    unknown = [c for c in candidates if c not in router.llms_]
    if unknown:
        raise UnknownLLMError(
            f"candidates: unknown or removed LLM(s) {', '.join(map(repr, unknown))}; "
            f"active: {', '.join(router.llms_)}"
        )


def _spec(router: Any, llm: str) -> Any:
    try:
        return router.prices_[llm]
    except (KeyError, AttributeError, MixLLMError):
        return None


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _naive(value: Any) -> bool:
    if isinstance(value, datetime):
        return value.tzinfo is None
    return pd.Timestamp(value).tzinfo is None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
