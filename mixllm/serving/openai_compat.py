"""OpenAI chat-completions shapes: the request, ``mixllm[:budget]`` model names, the response
and its streaming chunks, so that the official ``openai`` client works unchanged."""

from __future__ import annotations

import json
import math
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mixllm.core.errors import InvalidRequestError
from mixllm.serving.backends import BackendReply, content_text

MODEL_PREFIX = "mixllm"
MAX_BUDGET_FRACTION = 10.0  # ten times the reference LLM's cost: anything above is a typo


class ChatMessage(BaseModel):
    """One message; unknown OpenAI fields (name, tool_calls, ...) pass through."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer", "function"]
    content: str | list[dict[str, Any]] | None = None


MAX_STOP_SEQUENCES = 4  # OpenAI's limit
MAX_ANSWER_TOKENS = 1_000_000


class StreamOptions(BaseModel):
    """``stream_options``: only ``include_usage`` exists."""

    model_config = ConfigDict(extra="forbid")

    include_usage: bool = Field(False, strict=True)


class ResponseFormat(BaseModel):
    """``response_format``: its type; a json_schema passes through to the backend."""

    model_config = ConfigDict(extra="allow")

    type: Literal["text", "json_object", "json_schema"]


def _finite(lo: float, hi: float) -> Any:
    return Field(None, ge=lo, le=hi, allow_inf_nan=False)


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions body. The parameters that change what an answer may be are
    declared and checked here; every backend honours them or the request is refused (see
    ``Backend.unsupported``). Other OpenAI parameters pass through to the backend."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = Field(False, strict=True)  # "yes" or 1 is a client bug, not true
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=128, strict=True)
    max_tokens: int | None = Field(None, ge=1, le=MAX_ANSWER_TOKENS, strict=True)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_ANSWER_TOKENS, strict=True)
    stop: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = Field(None, max_length=128)
    tool_choice: str | dict[str, Any] | None = None
    response_format: ResponseFormat | None = None
    temperature: float | None = _finite(0, 2)
    top_p: float | None = _finite(0, 1)
    presence_penalty: float | None = _finite(-2, 2)
    frequency_penalty: float | None = _finite(-2, 2)

    @field_validator("model")
    @classmethod
    def _model_name(cls, value: str) -> str:
        parse_model(value)
        return value

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        if any(not s for s in stops):
            raise ValueError("a stop sequence is empty")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ChatCompletionRequest:
        if self.max_tokens is not None and self.max_completion_tokens is not None:
            raise ValueError("give max_completion_tokens or max_tokens (its old name), not both")
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed with stream: true")
        return self

    def answer_tokens(self) -> int | None:
        """The most answer tokens asked for (max_completion_tokens or max_tokens)."""
        return self.max_completion_tokens or self.max_tokens

    def include_usage(self) -> bool:
        """True if a streamed answer must end with a usage chunk."""
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def forward_body(self) -> dict[str, Any]:
        """The body to send to a backend: everything but our model name and ``stream`` (the
        backend sets it); ``stream_options`` goes upstream with a streamed request."""
        body = self.model_dump(exclude_none=True)
        body.pop("model", None)
        body.pop("stream", None)
        return body

    def query(self) -> str:
        """The text to route: the last user message."""
        for message in reversed(self.messages):
            if message.role == "user":
                return content_text(message.content)
        return ""


def parse_model(model: str) -> float | None:
    """Budget in % of the reference LLM's cost from ``mixllm`` / ``mixllm:0.25`` (-> 25.0)."""
    name, sep, budget = model.strip().partition(":")
    if name != MODEL_PREFIX:
        raise InvalidRequestError(
            f"model must be '{MODEL_PREFIX}' or '{MODEL_PREFIX}:<budget>' (budget as a fraction "
            f"of the reference LLM's cost, e.g. '{MODEL_PREFIX}:0.25'), got {model!r}"
        )
    if not sep:
        return None
    try:
        fraction = float(budget)
    except ValueError:
        raise InvalidRequestError(
            f"budget in model {model!r} is not a number; use e.g. '{MODEL_PREFIX}:0.25'"
        ) from None
    if not math.isfinite(fraction) or not 0 < fraction <= MAX_BUDGET_FRACTION:
        raise InvalidRequestError(
            f"budget in model {model!r} must be in (0, {MAX_BUDGET_FRACTION:g}] "
            "(a fraction of the reference LLM's cost)"
        )
    return fraction * 100.0


def completion_id(request_id: str) -> str:
    """The OpenAI-style id of a completion."""
    return f"chatcmpl-{request_id}"


def build_response(
    reply: BackendReply, *, llm: str, request_id: str, mixllm: dict[str, Any]
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` naming the LLM that answered, plus our ``mixllm`` field."""
    if reply.raw is not None:
        # The backend spoke OpenAI already: keep its choices (tool calls, logprobs, ...).
        out = dict(reply.raw)
        out.setdefault("object", "chat.completion")
        out.setdefault("created", int(time.time()))
        out.setdefault("usage", _usage(reply))
    else:
        out = {
            "object": "chat.completion",
            "created": int(time.time()),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": reply.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": _usage(reply),
        }
    out["id"] = completion_id(request_id)
    out["model"] = llm
    out["mixllm"] = mixllm
    return out


def _usage(reply: BackendReply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def chunk(
    piece: dict[str, Any], *, llm: str, request_id: str, created: int, mixllm: dict | None = None
) -> dict[str, Any]:
    """A backend's stream chunk re-labelled as ours (id, model = the LLM that answers)."""
    out = {**piece}
    out["id"] = completion_id(request_id)
    out["object"] = "chat.completion.chunk"
    out["created"] = created
    out["model"] = llm
    out.setdefault("choices", [])
    if mixllm is not None:
        out["mixllm"] = mixllm
    return out


def usage_chunk(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The last chunk ``stream_options.include_usage`` asks for: no choices, the usage."""
    return {
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def sse(data: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``data`` as JSON."""
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


SSE_DONE = b"data: [DONE]\n\n"


class ErrorDetail(BaseModel):
    """OpenAI's ``error`` object."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error the service answers, in OpenAI's shape."""

    error: ErrorDetail


def error_body(message: str, *, kind: str, param: str | None = None, code: str | None = None):
    """The OpenAI error shape (the openai client reads ``error.message``)."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
