"""What a backend answers (a whole reply or a stream of OpenAI chunks), the protocol every
backend follows, and the texts of OpenAI messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class BackendReply:
    """One complete answer from a backend."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str = "stop"
    cost_usd: float | None = None  # None: the caller prices the tokens
    quality: float | None = None  # replay only: the recorded quality of this answer
    detail: dict[str, Any] = field(default_factory=dict)  # backend-specific facts
    raw: dict[str, Any] | None = None  # the backend's own response body, if it had one


@dataclass
class BackendStream:
    """An opened streaming answer: chunks (OpenAI ``chat.completion.chunk`` dicts)."""

    chunks: AsyncIterator[dict[str, Any]]
    detail: dict[str, Any] = field(default_factory=dict)
    quality: float | None = None
    cost_usd: float | None = None


class Backend(Protocol):
    """What the service needs from a backend."""

    name: str
    kind: str

    async def complete(self, llm: str, model: str, body: dict[str, Any]) -> BackendReply:
        """Answer a chat-completions request body (non-streaming)."""
        ...

    async def open_stream(self, llm: str, model: str, body: dict[str, Any]) -> BackendStream:
        """Start a streaming answer; raises before any chunk if the backend fails."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (no secrets)."""
        ...

    def unsupported(self, body: dict[str, Any]) -> str | None:
        """Why this backend cannot honour the request ``body`` (None: it can)."""
        ...


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """Text of the last user message (string content or text parts); '' if none."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def content_text(content: Any) -> str:
    """Plain text of an OpenAI message content: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """All message texts joined: what a backend is billed for as prompt."""
    return "\n\n".join(content_text(m.get("content")) for m in messages)
