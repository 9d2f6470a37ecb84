"""Forwarding a routed chat request to the chosen LLM's backend: one OpenAI chat.completion,
or a stream of server-sent events whose first chunk carries the routing details."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from mixllm.core.errors import BackendError, BackendTimeoutError
from mixllm.core.tokens import count_tokens
from mixllm.serving import openai_compat
from mixllm.serving.backends import BackendRegistry, prompt_text
from mixllm.serving.edge import http_error, public_message
from mixllm.serving.inflight import InFlight
from mixllm.serving.metrics import ServiceMetrics

log = logging.getLogger(__name__)

Price = Callable[[str, int, int], float | None]  # (llm, prompt, completion tokens) -> $
_ROUTING_KEYS = (
    "request_id",
    "router_version",
    "tags",
    "candidates",
    "excluded",
    "decision_ms",
    "budget_usd",
)


def routing_field(decision: dict[str, Any]) -> dict[str, Any]:
    """The routing details a chat answer carries (its ``mixllm`` field)."""
    return {k: decision[k] for k in _ROUTING_KEYS if k in decision}


class ChatForwarder:
    """Calls the backend of a decision's LLM, counting the request in flight meanwhile."""

    def __init__(
        self, backends: BackendRegistry, inflight: InFlight, metrics: ServiceMetrics, price: Price
    ) -> None:
        self.backends = backends
        self.inflight = inflight
        self.metrics = metrics
        self.price = price

    async def complete(self, decision: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """The OpenAI chat.completion of the decision's LLM for the request ``body``."""
        llm = decision["llm"]
        backend, model = self.backends.resolve(llm)
        with self.inflight.track(llm):
            try:
                reply = await backend.complete(llm, model, body)
            except BackendError as exc:
                self._count_error(backend.name, exc)
                raise
        cost = reply.cost_usd
        if cost is None:
            cost = self.price(llm, reply.prompt_tokens, reply.completion_tokens)
        routing = routing_field(decision)
        routing.update(
            backend=reply.detail or {"backend": backend.name},
            cost_usd=cost,
            latency_s=round(reply.latency_s, 4),
            recorded_quality=reply.quality,
        )
        return openai_compat.build_response(
            reply, llm=llm, request_id=decision["request_id"], mixllm=routing
        )

    async def stream(self, decision: dict[str, Any], body: dict[str, Any]) -> AsyncIterator[bytes]:
        """Open the backend stream (errors raise here, before any byte is sent), then return
        the SSE byte stream."""
        llm = decision["llm"]
        backend, model = self.backends.resolve(llm)
        self.inflight.enter(llm)
        try:
            stream = await backend.open_stream(llm, model, body)
        except BaseException as exc:
            self.inflight.leave(llm)
            if isinstance(exc, BackendError):
                self._count_error(backend.name, exc)
            raise
        routing = routing_field(decision)
        routing.update(
            backend=stream.detail or {"backend": backend.name},
            cost_usd=stream.cost_usd,
            recorded_quality=stream.quality,
        )
        usage = None
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = count_tokens(prompt_text(body.get("messages") or []))
        return self._sse(stream.chunks, llm, decision["request_id"], routing, backend.name, usage)

    async def _sse(
        self,
        chunks: AsyncIterator[dict[str, Any]],
        llm: str,
        request_id: str,
        routing: dict[str, Any],
        backend: str,
        usage_prompt_tokens: int | None = None,
    ) -> AsyncIterator[bytes]:
        """The SSE bytes; with ``usage_prompt_tokens`` (include_usage asked) the stream ends
        with a usage chunk, counted here if the backend sent none."""
        created = int(time.time())
        first = True
        sent_usage = False
        answer: list[str] = []
        try:
            async for piece in chunks:
                sent_usage = sent_usage or bool(piece.get("usage"))
                if usage_prompt_tokens is not None:
                    piece = {"usage": None, **piece}  # OpenAI: null until the last chunk
                for choice in piece.get("choices") or []:
                    content = (choice.get("delta") or {}).get("content")
                    if isinstance(content, str):
                        answer.append(content)
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
            if usage_prompt_tokens is not None and not sent_usage:
                usage = openai_compat.usage_chunk(
                    usage_prompt_tokens, count_tokens("".join(answer))
                )
                yield openai_compat.sse(
                    openai_compat.chunk(usage, llm=llm, request_id=request_id, created=created)
                )
        except BackendError as exc:
            # Headers are gone already: the error travels as a last event, like OpenAI's.
            self._count_error(backend, exc)
            status, kind = http_error(exc)
            message = public_message(exc, status, request_id)  # no backend URL to the client
            yield openai_compat.sse(openai_compat.error_body(message, kind=kind, code=str(status)))
        finally:
            self.inflight.leave(llm)
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()  # a client that hung up must not keep the backend connection
        yield openai_compat.SSE_DONE

    def _count_error(self, backend: str, exc: BackendError) -> None:
        kind = "timeout" if isinstance(exc, BackendTimeoutError) else "error"
        self.metrics.backend_errors.labels(backend=backend, kind=kind).inc()
        log.warning("backend failure: %s", exc)  # the details, for the operator only
