"""The routing service's logic, free of any web framework: the live champion router and its
hot swap, in-flight tracking per LLM, request validation, the feedback loop and metrics.

``flows/service.py`` is a thin BentoML/FastAPI edge over ``RoutingService``: it parses HTTP,
calls one method per endpoint and turns domain errors into status codes with
``http_error``. Everything here is plain Python and testable without a server.

Modules: ``settings`` (ServiceSettings, env parsing), ``requests`` (request bodies),
``edge`` (HTTP status per error, validation messages), ``metrics`` (Prometheus),
``concurrency`` (EncodeBatcher), ``inflight`` (InFlight, shared counts), ``shared_state``
and ``sql_docs`` (the state store that workers and replicas share), ``embeddings``
(in-memory LRU of query embeddings), ``champion`` (Champion, sources, hot swap),
``candidates`` (runtime candidate helpers), ``candidate_admin`` (listing, adding, removing
candidates),
``decisions`` (routing decisions), ``chat`` (forwarding to backends), ``feedback_intake``
(feedback stored and learned online), ``health`` (health, readiness, models, scrape),
``watcher`` (champion watcher thread), ``retraining`` (the trigger), ``service``
(RoutingService, the facade over them).
"""

from mixllm.serving.champion import Champion, ChampionSlot, ChampionSource, RegistrySource
from mixllm.serving.concurrency import EncodeBatcher
from mixllm.serving.edge import bad_param, describe_validation, http_error, public_message
from mixllm.serving.embeddings import QueryEmbeddings, encode_uncached
from mixllm.serving.inflight import InFlight
from mixllm.serving.metrics import ServiceMetrics, count_request, endpoint_label, service_metrics
from mixllm.serving.requests import AddLLMRequest, ChatRequest, FeedbackRequest, RouteRequest
from mixllm.serving.retraining import Trigger
from mixllm.serving.service import RoutingService
from mixllm.serving.settings import ServiceSettings, max_query_chars

__all__ = [
    "AddLLMRequest",
    "Champion",
    "ChampionSlot",
    "ChampionSource",
    "ChatRequest",
    "EncodeBatcher",
    "FeedbackRequest",
    "InFlight",
    "QueryEmbeddings",
    "RegistrySource",
    "RouteRequest",
    "RoutingService",
    "ServiceMetrics",
    "ServiceSettings",
    "Trigger",
    "bad_param",
    "count_request",
    "describe_validation",
    "encode_uncached",
    "endpoint_label",
    "http_error",
    "max_query_chars",
    "public_message",
    "service_metrics",
]
