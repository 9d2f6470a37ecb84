"""A small OpenAI-compatible upstream for the service tests (uvicorn in a thread) whose
paths answer, fail, hang or stream on purpose."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.servers import free_port

UPSTREAM_TEXT = "upstream says hello"


def _completion(body: dict) -> dict:
    last = body["messages"][-1]["content"]
    return {
        "id": "chatcmpl-upstream",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "?"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"{UPSTREAM_TEXT}: {last}"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
    }


async def _ok(request: Request) -> Response:
    body = await request.json()
    if not body.get("stream"):
        return JSONResponse(_completion(body))

    async def events():
        for piece in [{"role": "assistant"}, {"content": UPSTREAM_TEXT}, {"content": "!"}]:
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": piece}],
            }
            yield f"data: {json.dumps(chunk)}\n\n"
        if (body.get("stream_options") or {}).get("include_usage"):  # as OpenAI does
            usage = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
            yield f"data: {json.dumps({'id': 'x', 'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def _fail(_: Request) -> Response:
    return JSONResponse({"error": {"message": "upstream exploded"}}, status_code=500)


async def _slow(_: Request) -> Response:
    await asyncio.sleep(5)
    return JSONResponse({})


async def _garbage(_: Request) -> Response:
    return Response("<html>not json</html>", media_type="text/html")


class Upstream:
    """Paths /ok, /fail, /slow and /garbage, each with /v1/chat/completions below."""

    def __init__(self) -> None:
        routes = [
            Route(f"/{name}/v1/chat/completions", fn, methods=["POST"])
            for name, fn in (("ok", _ok), ("fail", _fail), ("slow", _slow), ("garbage", _garbage))
        ]
        self.port = free_port()
        config = uvicorn.Config(
            Starlette(routes=routes), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def url(self, name: str) -> str:
        """Base URL (OpenAI style, ending in /v1) of one behaviour."""
        return f"http://127.0.0.1:{self.port}/{name}/v1"

    def __enter__(self) -> Upstream:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("upstream did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
