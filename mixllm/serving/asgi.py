"""The service's outermost layer as plain ASGI (no web framework): a request id per request,
API-key authentication, and the checks every request body must pass (``bodies``), so that
no endpoint ever sees a body that is too large, not UTF-8, not JSON, too deep or invalid
Unicode. Each refusal is an OpenAI-style error; each response carries ``x-request-id``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from mixllm.core.errors import MixLLMError
from mixllm.serving.auth import ADMIN, ROUTE, ApiKeys
from mixllm.serving.bodies import max_body_bytes, parse_body
from mixllm.serving.edge import http_error
from mixllm.serving.metrics import count_request

log = logging.getLogger("mixllm.service")

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

HEALTH_PATH = "/mixllm/healthz"  # BentoML owns /healthz: the middleware maps it here
REQUEST_ID_HEADER = b"x-request-id"
_ROUTE_PATHS = ("/route", "/v1/chat/completions", "/v1/models", "/feedback", "/llms")
_BODY_METHODS = ("POST", "PUT", "PATCH")


def needed_role(method: str, path: str) -> str | None:
    """The role a request needs: admin to change /llms, route for the API, None for health,
    metrics and the OpenAPI docs (probes and scrapers carry no key)."""
    if path == "/llms" or path.startswith("/llms/"):
        return ROUTE if method in ("GET", "HEAD") else ADMIN
    if path in _ROUTE_PATHS:
        return ROUTE
    return None


async def send_error(
    send: Send, status: int, message: str, kind: str, request_id: str, extra=()
) -> None:
    """Answer with an OpenAI-style error body."""
    payload = json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (REQUEST_ID_HEADER, request_id.encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _plain_error(status: int, body: list[bytes]) -> tuple[str, str]:
    """(message, OpenAI error type) for a framework's plain-text error response."""
    if status == 503:  # BentoML's /readyz: its text says why, nothing internal
        return "service not ready: no router can serve yet", "service_unavailable"
    if status >= 500:
        return "internal error", "internal_error"
    text = b"".join(body).decode("utf-8", "replace").strip()[:200] or "error"
    return text, "not_found_error" if status == 404 else "invalid_request_error"


async def read_body(receive: Receive, limit: int) -> tuple[bytes, list[dict[str, Any]]]:
    """The whole body (stops reading past ``limit`` + 1 bytes) and the messages received."""
    chunks: list[bytes] = []
    size = 0
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if size > limit or not message.get("more_body", False):
            break
    return b"".join(chunks), messages


class EdgeMiddleware:
    """Request id, authentication and body checks before the app; request counting after."""

    def __init__(self, app: Any, keys: ApiKeys | None = None) -> None:
        self.app = app
        self.keys = keys if keys is not None else ApiKeys.from_env()

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        request_id = uuid.uuid4().hex
        rid = request_id.encode()
        scope = {**scope, "state": {**scope.get("state", {}), "request_id": request_id}}
        if path == "/healthz":
            scope.update(path=HEALTH_PATH, raw_path=HEALTH_PATH.encode())
        status = 500
        plain: list[bytes] | None = None  # body of a non-JSON error being rewritten

        async def send_and_watch(message: dict) -> None:
            # Errors that do not come from our handlers (the framework's plain-text 404/405)
            # are rewritten into the OpenAI error shape every client of this API expects.
            nonlocal status, plain
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = dict(message.get("headers") or [])
                if status >= 400 and b"json" not in headers.get(b"content-type", b""):
                    plain = []
                    return
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (REQUEST_ID_HEADER, rid)],
                }
            elif message["type"] == "http.response.body" and plain is not None:
                plain.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await send_error(send, status, *_plain_error(status, plain), request_id)
                return
            await send(message)

        try:
            refusal = self._authorize(scope, method, path)
            if refusal is None and method in _BODY_METHODS and needed_role(method, path):
                refusal, receive = await self._checked_body(receive)
            if refusal is not None:
                status, kind, message = refusal
                extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
                await send_error(send, status, message, kind, request_id, extra)
                return
            await self.app(scope, receive, send_and_watch)
        finally:
            count_request(path, status)

    def _authorize(self, scope: dict, method: str, path: str) -> tuple[int, str, str] | None:
        needed = needed_role(method, path)
        if needed is None:
            return None
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        try:
            role = self.keys.check(authorization, needed)
        except MixLLMError as exc:
            status, kind = http_error(exc)
            return status, kind, str(exc)
        scope["state"]["role"] = role
        return None

    async def _checked_body(self, receive: Receive) -> tuple[tuple[int, str, str] | None, Receive]:
        """(refusal or None, a receive that replays the body already read)."""
        limit = max_body_bytes()
        raw, messages = await read_body(receive, limit)
        try:
            parse_body(raw, limit)
        except MixLLMError as exc:
            status, kind = http_error(exc)
            return (status, kind, str(exc)), receive
        replay = [{"type": "http.request", "body": raw, "more_body": False}]
        replay += [m for m in messages if m["type"] != "http.request"]

        async def replaying() -> dict[str, Any]:
            return replay.pop(0) if replay else await receive()

        return None, replaying
