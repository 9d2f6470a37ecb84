"""The MixLLM routing service: BentoML serving a FastAPI app, logic in `mixllm.serving`.

Start it with `mixllm serve` or `bentoml serve flows.service:MixLLMService` from the project
root. Endpoints: POST /route, POST /v1/chat/completions (OpenAI-compatible), POST /feedback,
GET|POST /llms, DELETE /llms/{name}, GET /healthz, GET /metrics; OpenAPI docs at `/`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import bentoml
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import Request

from mixllm import serving
from mixllm.core.errors import MixLLMError
from mixllm.serving import openai_compat

log = logging.getLogger("mixllm.service")

HEALTH_PATH = "/mixllm/healthz"  # BentoML owns /healthz: the edge middleware maps it here
WORKERS = int(os.environ.get("MIXLLM_WORKERS", "1"))

app = FastAPI(
    title="MixLLM router",
    description="Routes each query to the LLM with the best quality/cost/latency trade-off.",
    version="1",
)


def _error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(
        openai_compat.error_body(message, kind=kind, param=param, code=str(status)),
        status_code=status,
    )


@app.exception_handler(RequestValidationError)
async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    return _error(
        400, serving.describe_validation(errors), "invalid_request_error", serving.bad_param(errors)
    )


@app.exception_handler(MixLLMError)
async def _domain_error(_: Request, exc: MixLLMError) -> JSONResponse:
    status, kind = serving.http_error(exc)
    return _error(status, str(exc), kind)


@app.exception_handler(Exception)
async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error")  # a bug: keep the traceback in the service log
    return _error(500, f"internal error: {type(exc).__name__}: {exc}", "internal_error")


class EdgeMiddleware:
    """Counts requests per endpoint and status; answers /healthz with the router's health."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/healthz":
            scope = {**scope, "path": HEALTH_PATH, "raw_path": HEALTH_PATH.encode()}
        status = 500

        async def send_and_watch(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            serving.count_request(path, status)


def prefect_trigger(deployment: str) -> Callable[[dict[str, Any]], str]:
    """Start a run of a Prefect deployment without waiting for it; returns the run id."""

    def trigger(parameters: dict[str, Any]) -> str:
        if not os.environ.get("PREFECT_API_URL"):
            # Without a server Prefect would boot an ephemeral one inside this process,
            # which holds no deployment: say what is missing instead.
            raise RuntimeError("no Prefect server configured (set PREFECT_API_URL)")
        from prefect.deployments import run_deployment

        run = run_deployment(
            deployment, parameters=_public(parameters), timeout=0, as_subflow=False
        )
        return str(run.id)

    return trigger


def _public(parameters: dict[str, Any]) -> dict[str, Any]:
    """Flow parameters fit for Prefect's database: a URL with a password stays out."""
    url = parameters.get("feedback_url")
    if url and urlparse(str(url)).password:
        return {k: v for k, v in parameters.items() if k != "feedback_url"}
    return parameters


@bentoml.service(name="mixllm", traffic={"timeout": 600}, workers=WORKERS)
@bentoml.asgi_app(app, path="/")
class MixLLMService:
    """Serves the registry's champion router; see docs/SERVICE.md."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        # BentoML's workers log WARNING and up; swaps, triggers and load errors are INFO.
        logging.getLogger("mixllm").setLevel(os.environ.get("MIXLLM_LOG_LEVEL", "INFO"))
        settings = serving.ServiceSettings.from_env()
        self.core = serving.RoutingService(
            settings, trigger=prefect_trigger(settings.retrain_deployment)
        )
        self.core.start()

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        """Stop the champion watcher and close the feedback store."""
        self.core.stop()

    def __metrics__(self, content: str) -> str:
        return self.core.metrics_text(content)

    @app.post("/route", summary="Pick the LLM for a query")
    def route(self, body: serving.RouteRequest) -> dict:
        """Chosen LLM, tags, each candidate's predicted quality/cost/latency/score."""
        return self.core.route(body)

    @app.post("/v1/chat/completions", summary="OpenAI-compatible chat", response_model=None)
    async def chat(self, body: serving.ChatRequest) -> Any:
        """Route the last user message, forward to the chosen LLM's backend, answer."""
        if body.stream:
            events = await self.core.chat_stream(body)
            return StreamingResponse(events, media_type="text/event-stream")
        return await self.core.chat(body)

    @app.post("/feedback", summary="Log feedback on a routed request")
    def feedback(self, body: serving.FeedbackRequest) -> dict:
        """Stored durably (2xx = committed), then applied as an online update."""
        return self.core.feedback(body)

    @app.get("/llms", summary="Candidate LLMs")
    def llms(self) -> dict:
        """Every LLM the router knows, active or not, with prices and backend."""
        return self.core.list_llms()

    @app.post("/llms", summary="Add a candidate LLM")
    def add_llm(self, body: serving.AddLLMRequest) -> dict:
        """Route to a new LLM from now on, no retraining."""
        return self.core.add_llm(body)

    @app.delete("/llms/{name:path}", summary="Stop routing to an LLM")
    def remove_llm(self, name: str) -> dict:
        """Stop routing to ``name`` at once."""
        return self.core.remove_llm(name)

    @app.get(HEALTH_PATH, summary="Health (also at /healthz)")
    def health(self) -> dict:
        """Router version, feedback count, champion load status."""
        return self.core.health()


MixLLMService.add_asgi_middleware(EdgeMiddleware)
