"""The ``openai`` backend: forwards chat completions to an OpenAI-compatible server (httpx).
Failures become ``BackendError`` (502) or ``BackendTimeoutError`` (504); their messages
name the backend and URL for the log, never for the caller (see ``edge.public_message``)."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

from mixllm.core.errors import BackendError, BackendTimeoutError
from mixllm.core.tokens import count_tokens
from mixllm.serving.replies import BackendReply, BackendStream, content_text, prompt_text

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0  # how long an added LLM's backend gets to accept a TCP connection


class OpenAIBackend:
    """Forwards chat completions to an OpenAI-compatible server over HTTP (httpx)."""

    kind = "openai"

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s

    def describe(self) -> dict[str, Any]:
        """Kind, URL, key variable name (never the key) and timeout."""
        return {
            "name": self.name,
            "kind": self.kind,
            "base_url": self.base_url,
            "api_key_env": self.api_key_env,
            "timeout_s": self.timeout_s,
        }

    def unsupported(self, body: dict[str, Any]) -> str | None:
        """None: the server gets every OpenAI parameter and answers for itself."""
        return None

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _client(self) -> Any:
        import httpx

        timeout = httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
        return httpx.AsyncClient(timeout=timeout, headers=self._headers())

    def _where(self, llm: str) -> str:
        return f"backend {self.name!r} ({self.base_url}) for LLM {llm!r}"

    async def complete(self, llm: str, model: str, body: dict[str, Any]) -> BackendReply:
        """POST /chat/completions and return the answer with the server's usage."""
        import httpx

        payload = {**body, "model": model, "stream": False}
        payload.pop("stream_options", None)  # OpenAI refuses it without stream
        t0 = time.perf_counter()
        try:
            async with self._client() as client:
                resp = await client.post(f"{self.base_url}/chat/completions", json=payload)
        except httpx.TimeoutException as exc:
            raise BackendTimeoutError(
                f"{self._where(llm)} timed out after {self.timeout_s:g}s"
            ) from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"{self._where(llm)} is unreachable: {exc!r}") from exc
        latency = time.perf_counter() - t0
        if resp.status_code >= 400:
            raise BackendError(
                f"{self._where(llm)} answered HTTP {resp.status_code}: {_excerpt(resp.text)}"
            )
        data = _json_object(resp.text, self._where(llm))
        return _reply_from_openai(data, body, latency, self._where(llm))

    async def open_stream(self, llm: str, model: str, body: dict[str, Any]) -> BackendStream:
        """Open a streaming POST; HTTP errors raise here, before the first chunk."""
        import httpx

        payload = {**body, "model": model, "stream": True}
        client = self._client()
        try:
            request = client.build_request(
                "POST", f"{self.base_url}/chat/completions", json=payload
            )
            resp = await client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            await client.aclose()
            raise BackendTimeoutError(
                f"{self._where(llm)} timed out after {self.timeout_s:g}s"
            ) from exc
        except httpx.HTTPError as exc:
            await client.aclose()
            raise BackendError(f"{self._where(llm)} is unreachable: {exc!r}") from exc
        if resp.status_code >= 400:
            text = (await resp.aread()).decode("utf-8", "replace")
            await resp.aclose()
            await client.aclose()
            raise BackendError(
                f"{self._where(llm)} answered HTTP {resp.status_code}: {_excerpt(text)}"
            )
        return BackendStream(_sse_chunks(resp, client, self._where(llm)), {"backend": self.name})


async def _sse_chunks(resp: Any, client: Any, where: str) -> AsyncIterator[dict[str, Any]]:
    """Chunks of an OpenAI server-sent-event stream; closes the connection at the end."""
    import httpx

    try:
        async for line in resp.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError:
                log.warning("%s sent a malformed stream event: %s", where, _excerpt(data))
                continue
            if isinstance(chunk, dict):
                yield chunk
    except httpx.TimeoutException as exc:
        raise BackendTimeoutError(f"{where} timed out while streaming") from exc
    except httpx.HTTPError as exc:
        raise BackendError(f"{where} broke the stream: {exc!r}") from exc
    finally:
        await resp.aclose()
        await client.aclose()


def _excerpt(text: str, limit: int = 300) -> str:
    text = text.strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BackendError(f"{where} answered with non-JSON: {_excerpt(text)}") from exc
    if not isinstance(data, dict):
        raise BackendError(f"{where} answered with JSON that is not an object")
    return data


def _reply_from_openai(
    data: dict[str, Any], body: dict[str, Any], latency: float, where: str
) -> BackendReply:
    """A BackendReply from an OpenAI chat.completion body (usage counted if missing)."""
    try:
        choice = data["choices"][0]
        text = content_text(choice.get("message", {}).get("content")) or ""
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise BackendError(f"{where} answered without choices[0].message") from exc
    usage = data.get("usage") or {}
    prompt_tokens = usage.get("prompt_tokens")
    completion_tokens = usage.get("completion_tokens")
    return BackendReply(
        text=text,
        prompt_tokens=int(prompt_tokens)
        if isinstance(prompt_tokens, int)
        else count_tokens(prompt_text(body.get("messages") or [])),
        completion_tokens=int(completion_tokens)
        if isinstance(completion_tokens, int)
        else count_tokens(text),
        latency_s=latency,
        finish_reason=choice.get("finish_reason") or "stop",
        raw=data,
    )


def accepts_connection(base_url: str) -> bool:
    """True if the host of ``base_url`` accepts a TCP connection (nothing is sent)."""
    url = urlparse(base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError as exc:
        log.warning("backend %s is not reachable: %s", base_url, exc)
        return False
