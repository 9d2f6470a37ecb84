"""Request bodies of the service's endpoints (pydantic, strict) and their validation."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mixllm.core.bounds import MAX_COST_USD, MAX_LATENCY_S
from mixllm.core.errors import InvalidRequestError, PayloadTooLargeError
from mixllm.core.text import check_text
from mixllm.serving import openai_compat
from mixllm.serving.backends import content_text
from mixllm.serving.settings import max_prompt_chars, max_query_chars

MAX_BUDGET_FRACTION = openai_compat.MAX_BUDGET_FRACTION
MAX_BUDGET_USD = 100.0  # dollars per query: anything above is a typo


def _check_query(value: str) -> str:
    check_text(value, "query")
    if not value.strip():
        raise ValueError("query is empty")
    limit = max_query_chars()
    if len(value) > limit:
        raise ValueError(f"query has {len(value)} characters, the limit is {limit}")
    return value


def _check_names(value: list[str] | None) -> list[str] | None:
    for i, name in enumerate(value or []):
        check_text(name, f"candidates.{i}")
    return value


def _check_candidates(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if not value:
        raise ValueError("candidates is empty; omit it to consider every active LLM")
    if len(set(value)) != len(value):
        raise ValueError("candidates has duplicates")
    return _check_names(value)


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

    @field_validator("budget", "budget_usd", mode="before")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        # Before the range check: NaN would otherwise read as "should be <= 10".
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return value

    @model_validator(mode="after")
    def _one_budget(self) -> RouteRequest:
        if self.budget is not None and self.budget_usd is not None:
            raise ValueError("give budget (a fraction) or budget_usd (dollars), not both")
        return self


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


_EGRESS_FIELDS = ("base_url", "api_key_env", "api_key", "url", "timeout_s", "headers")


class AddLLMRequest(_Body):
    """POST /llms: a new candidate, its prices and the backend that answers it."""

    name: str = Field(min_length=1, max_length=200)
    input_price: float = Field(ge=0, le=1, description="$ per prompt token.")
    output_price: float = Field(ge=0, le=1, description="$ per generated token.")
    backend: str | None = Field(
        None,
        max_length=200,
        description="A backend of the operator's backends.yaml; default: its default_backend.",
    )
    model: str | None = Field(
        None, min_length=1, max_length=200, description="The id the backend knows the LLM by."
    )
    tokens_per_s: float | None = Field(None, gt=0, le=1e6)
    ttft_s: float | None = Field(None, ge=0, le=3600)
    concurrency: int | None = Field(None, ge=1, le=100_000)
    prior_quality: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _no_egress(cls, data: Any) -> Any:
        # Where the service connects and which secret it sends are operator configuration:
        # a request naming them is refused outright, not silently ignored.
        if isinstance(data, dict):
            named = [k for k in _EGRESS_FIELDS if k in data]
            if named:
                raise ValueError(
                    f"{', '.join(named)} cannot be set by a request: backends and their "
                    "credentials come from the operator's backends.yaml; name one with 'backend'"
                )
        return data


class ChatRequest(openai_compat.ChatCompletionRequest):
    """POST /v1/chat/completions: OpenAI's body plus optional ``candidates``."""

    candidates: list[str] | None = None

    _candidates = field_validator("candidates")(_check_candidates)

    def forward_body(self) -> dict[str, Any]:
        """What the backend gets: OpenAI fields only."""
        body = super().forward_body()
        body.pop("candidates", None)
        return body


# The conversation window: a follow-up ("Looks good, go ahead and finish it.") is routed
# with the turns before it, so that it goes where the conversation belongs. Bounded so that
# a long chat does not drown the last message or slow the embedding: at most
# CONVERSATION_TURNS earlier user/assistant messages, the most recent CONVERSATION_CHARS
# characters of them.
CONVERSATION_TURNS = 4
CONVERSATION_CHARS = 2000


def chat_query(req: ChatRequest) -> str:
    """The text a chat request is routed on: the conversation window (see above) followed by
    the last user message, which is checked like a /route query."""
    messages = list(req.messages)
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    query = "" if last is None else content_text(messages[last].content)
    check_text(query, "messages")
    if not query.strip():
        raise InvalidRequestError("messages: no user message with text to route")
    limit = max_query_chars()
    if len(query) > limit:
        raise InvalidRequestError(
            f"messages: the last user message has {len(query)} characters, the limit is {limit}"
        )
    total = sum(len(content_text(m.content)) for m in messages)
    prompt_limit = max_prompt_chars()
    if total > prompt_limit:
        raise PayloadTooLargeError(
            f"messages: the conversation has {total} characters, the limit is {prompt_limit}"
        )
    earlier = [
        text
        for m in messages[:last][-CONVERSATION_TURNS:]
        if m.role in ("user", "assistant") and (text := content_text(m.content).strip())
    ]
    context = "\n\n".join(earlier)[-CONVERSATION_CHARS:]
    return f"{context}\n\n{query}" if context else query
