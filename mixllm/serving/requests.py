"""Request bodies of the service's endpoints (pydantic, strict) and their validation."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mixllm.core.errors import InvalidRequestError
from mixllm.registry.feedback_schema import MAX_COST_USD, MAX_LATENCY_S
from mixllm.serving import openai_compat
from mixllm.serving.settings import max_query_chars

MAX_BUDGET_FRACTION = openai_compat.MAX_BUDGET_FRACTION
MAX_BUDGET_USD = 100.0  # dollars per query: anything above is a typo


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
    """POST /feedback: one per request_id; every number finite and within its bounds."""

    request_id: str = Field(min_length=1, max_length=64)
    quality: float | None = Field(
        None, ge=0, le=1, allow_inf_nan=False, description="Graded quality in [0, 1]."
    )
    thumbs_up: bool | None = Field(None, description="Thumbs up (true) or down (false).")
    cost: float | None = Field(
        None, ge=0, le=MAX_COST_USD, allow_inf_nan=False, description="What the call cost, $."
    )
    latency_s: float | None = Field(
        None,
        ge=0,
        le=MAX_LATENCY_S,
        allow_inf_nan=False,
        description="End-to-end latency, seconds.",
    )

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


def chat_query(req: ChatRequest) -> str:
    """The text a chat request is routed on: its last user message, checked like a query."""
    query = req.query()
    if not query.strip():
        raise InvalidRequestError("messages: no user message with text to route")
    limit = max_query_chars()
    if len(query) > limit:
        raise InvalidRequestError(
            f"messages: the last user message has {len(query)} characters, the limit is {limit}"
        )
    return query
