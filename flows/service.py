"""The MixLLM routing service: BentoML serving a FastAPI app, logic in `mixllm.serving`.

Start it with `mixllm serve` or `bentoml serve flows.service:MixLLMService` from the project
root. Endpoints: POST /route, POST /v1/chat/completions (OpenAI-compatible), POST /feedback,
GET|POST /llms, DELETE /llms/{name}, GET /healthz, GET /metrics; OpenAPI docs at `/`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import bentoml
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from flows.retrain_trigger import PREFECT_TIMEOUT_S, prefect_run_active, prefect_trigger  # noqa: F401
from mixllm import serving
from mixllm.core.errors import MixLLMError
from mixllm.serving import openai_compat
from mixllm.serving.asgi import HEALTH_PATH, EdgeMiddleware
from mixllm.serving.auth import ApiKeys, require_keys

log = logging.getLogger("mixllm.service")

WORKERS = int(os.environ.get("MIXLLM_WORKERS", "1"))
DEFAULT_HOST = "127.0.0.1"

app = FastAPI(
    title="MixLLM router",
    description="Routes each query to the LLM with the best quality/cost/latency trade-off.",
    version="1",
)


# Every status an endpoint may answer besides 200, documented in the OpenAPI document.
_ERROR = {"model": openai_compat.ErrorResponse}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {**_ERROR, "description": "Invalid request (the message names the problem)"},
    401: {**_ERROR, "description": "Missing or invalid API key"},
    403: {**_ERROR, "description": "The API key's role may not do this"},
    404: {**_ERROR, "description": "Unknown request id or LLM"},
    405: {**_ERROR, "description": "Method not allowed"},
    413: {**_ERROR, "description": "Request body or conversation over its size limit"},
    502: {**_ERROR, "description": "The chosen LLM's backend failed"},
    503: {**_ERROR, "description": "No router or feedback store available"},
    504: {**_ERROR, "description": "The chosen LLM's backend timed out"},
}


def _error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(
        openai_compat.error_body(message, kind=kind, param=param, code=str(status)),
        status_code=status,
        headers={"www-authenticate": "Bearer"} if status == 401 else None,
    )


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


@app.exception_handler(RequestValidationError)
async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    return _error(
        400, serving.describe_validation(errors), "invalid_request_error", serving.bad_param(errors)
    )


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI's own errors (unknown path, wrong method, unparsable body) in OpenAI's shape."""
    if exc.status_code >= 500:
        request_id = _request_id(request)
        log.error("HTTP %s [request_id %s]: %s", exc.status_code, request_id, exc.detail)
        return _error(500, serving.public_message(exc, 500, request_id), "internal_error")
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return _error(exc.status_code, str(exc.detail), kind)


@app.exception_handler(MixLLMError)
async def _domain_error(request: Request, exc: MixLLMError) -> JSONResponse:
    status, kind = serving.http_error(exc)
    request_id = _request_id(request)
    if status >= 500:  # the details stay in the log, under the request id
        log.warning("%s [request_id %s]: %s", type(exc).__name__, request_id, exc)
    return _error(status, serving.public_message(exc, status, request_id), kind)


@app.exception_handler(Exception)
async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = _request_id(request)
    log.exception("unexpected error [request_id %s]", request_id)  # a bug: keep the traceback
    return _error(500, serving.public_message(exc, 500, request_id), "internal_error")


def bind_host(argv: list[str] | None = None) -> str:
    """The address `bentoml serve` binds: its --host option, else $BENTOML_HOST, else the
    service's configured default (127.0.0.1, see the decorator below)."""
    argv = sys.argv if argv is None else argv
    found = None
    for i, arg in enumerate(argv):  # the LAST --host wins, as click applies it
        if arg == "--host" and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith("--host="):
            found = arg.split("=", 1)[1]
    if found is not None:
        return found
    if os.environ.get("BENTOML_HOST"):
        return os.environ["BENTOML_HOST"]
    from bentoml._internal.configuration.containers import BentoMLContainer

    return str(BentoMLContainer.http.host.get())


# http.host: without --host, `bentoml serve` binds loopback only, never BentoML's 0.0.0.0.
@bentoml.service(
    name="mixllm", traffic={"timeout": 600}, workers=WORKERS, http={"host": DEFAULT_HOST}
)
@bentoml.asgi_app(app, path="/")
class MixLLMService:
    """Serves the registry's champion router; see docs/SERVICE.md."""

    @bentoml.on_deployment
    def refuse_exposed_without_keys() -> None:
        """Runs once in `bentoml serve` before it binds: a non-loopback address needs keys."""
        try:
            require_keys(bind_host(), ApiKeys.from_env())
        except MixLLMError as exc:
            log.error("%s", exc)
            raise SystemExit(f"error: {exc}") from None

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        # BentoML's workers log WARNING and up; swaps, triggers and load errors are INFO.
        logging.getLogger("mixllm").setLevel(os.environ.get("MIXLLM_LOG_LEVEL", "INFO"))
        settings = serving.ServiceSettings.from_env()
        self.core = serving.RoutingService(
            settings,
            trigger=prefect_trigger(settings.retrain_deployment),
            run_active=prefect_run_active,
        )
        self.core.start()

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        """Stop the champion watcher and close the feedback store."""
        self.core.stop()

    def __is_ready__(self) -> bool:
        """/readyz: ready only while a router is loaded (nothing to serve -> 503)."""
        return self.core.ready()

    def __metrics__(self, content: str) -> str:
        return self.core.metrics_text(content)

    @app.post("/route", summary="Pick the LLM for a query", response_model=dict, responses=ERRORS)
    def route(self, body: serving.RouteRequest) -> JSONResponse:
        """Chosen LLM, tags, each candidate's predicted quality/cost/latency/score."""
        # already JSON-ready: rendered directly, not re-encoded and re-validated by FastAPI
        return JSONResponse(self.core.route(body))

    @app.post(
        "/v1/chat/completions",
        summary="OpenAI-compatible chat",
        response_model=None,
        responses=ERRORS,
    )
    async def chat(self, body: serving.ChatRequest) -> Any:
        """Route the last user message, forward to the chosen LLM's backend, answer."""
        if body.stream:
            events = await self.core.chat_stream(body)
            return StreamingResponse(events, media_type="text/event-stream")
        return await self.core.chat(body)

    @app.get("/v1/models", summary="Model names a client may send", responses=ERRORS)
    def models(self) -> dict:
        """``mixllm`` (routed; ``mixllm:<budget>`` too) and every active candidate LLM."""
        return self.core.models()

    @app.post("/feedback", summary="Log feedback on a routed request", responses=ERRORS)
    def feedback(self, body: serving.FeedbackRequest) -> dict:
        """Stored durably (2xx = committed), then applied as an online update."""
        return self.core.feedback(body)

    @app.get("/llms", summary="Candidate LLMs", responses=ERRORS)
    def llms(self) -> dict:
        """Every LLM the router knows, active or not, with prices and backend."""
        return self.core.list_llms()

    @app.post("/llms", summary="Add a candidate LLM", responses=ERRORS)
    def add_llm(self, body: serving.AddLLMRequest) -> dict:
        """Route to a new LLM from now on, no retraining."""
        return self.core.add_llm(body)

    @app.delete("/llms/{name:path}", summary="Stop routing to an LLM", responses=ERRORS)
    def remove_llm(self, name: str) -> dict:
        """Stop routing to ``name`` at once."""
        return self.core.remove_llm(name)

    @app.get(
        HEALTH_PATH,
        summary="Health (also at /healthz)",
        response_model=None,
        responses={503: {"description": "Nothing can serve (same body)"}},
    )
    def health(self) -> Any:
        """Router version, feedback count, champion load status; 503 while nothing serves."""
        body = self.core.health()
        return JSONResponse(body, status_code=503 if body["status"] == "unavailable" else 200)


MixLLMService.add_asgi_middleware(EdgeMiddleware)
