"""LLM backends behind the service: recorded RouterBench answers (``replay``) and any
OpenAI-compatible chat-completions endpoint (``openai``), configured from YAML.

Backends speak the OpenAI chat-completions dialect: a request is the client's JSON body, a
reply carries the answer text, token usage and, for replay, the recorded quality and cost.
Failures become ``BackendError`` (the service answers 502) or ``BackendTimeoutError`` (504).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mixllm.core.errors import (
    BackendError,
    BackendTimeoutError,
    ConfigError,
    DataError,
    InvalidRequestError,
    MixLLMError,
)
from mixllm.core.paths import default_data_path
from mixllm.core.tokens import count_tokens

log = logging.getLogger(__name__)

BACKENDS_ENV = "MIXLLM_BACKENDS"
BACKENDS_RESOURCE = "backends.yaml"
REPLAY_CHUNK_CHARS = 24  # size of the pieces a replayed answer is streamed in
PROBE_TIMEOUT_S = 3.0  # how long an added LLM's backend gets to accept a TCP connection
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# -- configuration ---------------------------------------------------------------------


class BackendSpec(BaseModel):
    """One named backend."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: Literal["replay", "openai"]
    base_url: str | None = None  # openai: e.g. http://127.0.0.1:8000/v1
    api_key_env: str | None = None  # openai: environment variable holding the key
    timeout_s: float = Field(60.0, gt=0, le=3600, allow_inf_nan=False)
    data_path: str | None = None  # replay: RouterBench data (file or directory)

    @model_validator(mode="after")
    def _needs_url(self) -> BackendSpec:
        if self.kind == "openai" and not self.base_url:
            raise ValueError(f"backend {self.name!r} of kind openai needs a base_url")
        if self.base_url is not None:
            url = urlparse(self.base_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError(
                    f"backend {self.name!r}: base_url must be an http(s) URL with a host"
                )
        if self.api_key_env is not None and not _ENV_NAME.fullmatch(self.api_key_env):
            raise ValueError(f"backend {self.name!r}: api_key_env is not a variable name")
        return self


class LLMRoute(BaseModel):
    """Which backend answers one LLM, under which model id, at which prices."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    backend: str = Field(min_length=1)
    model: str | None = None  # the id the backend knows the LLM by; default: name
    input_price: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    output_price: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    tokens_per_s: float | None = Field(None, gt=0, allow_inf_nan=False)
    concurrency: int | None = Field(None, ge=1)


class BackendsConfig(BaseModel):
    """The whole backends file."""

    model_config = ConfigDict(extra="forbid")

    default_backend: str = "replay"
    backends: list[BackendSpec] = Field(default_factory=list)
    llms: list[LLMRoute] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> BackendsConfig:
        names = [b.name for b in self.backends]
        if len(set(names)) != len(names):
            raise ValueError(f"backend names must be unique: {names}")
        for route in self.llms:
            if route.backend not in names:
                raise ValueError(f"LLM {route.name!r} uses unknown backend {route.backend!r}")
        if self.default_backend not in names:
            raise ValueError(f"default_backend {self.default_backend!r} is not declared")
        return self


def load_backends_config(path: str | Path | None = None) -> BackendsConfig:
    """Read the backends YAML: ``path``, else $MIXLLM_BACKENDS, else the packaged file."""
    path = path or os.environ.get(BACKENDS_ENV)
    try:
        if path:
            text = Path(path).read_text()
        else:
            text = resources.files("mixllm.resources").joinpath(BACKENDS_RESOURCE).read_text()
        return BackendsConfig.model_validate(yaml.safe_load(text) or {})
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read backends file {path}: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"invalid backends file {path or BACKENDS_RESOURCE}: {exc}") from exc


# -- replies ---------------------------------------------------------------------------


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


# -- replay ----------------------------------------------------------------------------


_SPACES = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACES.sub(" ", text).strip().lower()


@dataclass
class _ReplayIndex:
    """Recorded answers, one row per query, and what is needed to find a row by text."""

    sample_ids: list[str]
    queries: list[str]
    responses: dict[str, list[str | None]]  # llm -> answer per row (None: not recorded)
    quality: dict[str, np.ndarray]
    cost: dict[str, np.ndarray]
    exact: dict[str, int]  # normalized query or whole prompt -> row
    vectorizer: Any
    matrix: Any  # TF-IDF of the queries, rows L2-normalized


class ReplayBackend:
    """Answers with the recorded RouterBench response of the chosen LLM.

    A request matches a recorded row by the exact text of its last user message (the
    question, or the whole recorded prompt), else the most similar recorded question that
    the LLM answered (TF-IDF cosine). The reply says which in ``detail["match"]``.
    """

    kind = "replay"

    def __init__(self, name: str = "replay", data_path: str | Path | None = None) -> None:
        self.name = name
        self.data_path = Path(data_path) if data_path else default_data_path()
        self._index: _ReplayIndex | None = None
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        """Kind and data path."""
        return {"name": self.name, "kind": self.kind, "data_path": str(self.data_path)}

    def unsupported(self, body: dict[str, Any]) -> str | None:
        """A recording is one plain-text answer: n > 1, tool calls and structured output
        cannot be honoured (max_tokens and stop are, by cutting the recorded answer)."""
        if (body.get("n") or 1) > 1:
            return "n: a replayed LLM has one recorded answer per query (n must be 1)"
        if body.get("tools") and body.get("tool_choice") != "none":
            return "tools: a replayed LLM cannot call tools"
        kind = (body.get("response_format") or {}).get("type", "text")
        if kind != "text":
            return f"response_format: a replayed LLM answers plain text, not {kind}"
        return None

    def llms(self) -> list[str]:
        """LLMs with recorded answers."""
        return list(self._load().responses)

    def _load(self) -> _ReplayIndex:
        with self._lock:
            if self._index is None:
                t0 = time.perf_counter()
                self._index = _build_index(self.data_path)
                log.info(
                    "replay backend: %d recorded queries from %s in %.1fs",
                    len(self._index.queries),
                    self.data_path,
                    time.perf_counter() - t0,
                )
            return self._index

    def lookup(self, llm: str, text: str) -> tuple[int, str, float]:
        """(row, 'exact' | 'nearest', similarity) of the recorded answer of ``llm`` for ``text``."""
        index = self._load()
        answers = index.responses.get(llm)
        if answers is None:
            raise BackendError(
                f"replay backend has no recorded answers for LLM {llm!r}; "
                f"recorded: {', '.join(index.responses)}"
            )
        row = index.exact.get(_norm(text))
        if row is not None and answers[row] is not None:
            return row, "exact", 1.0
        from mixllm.data.loaders import last_block

        query_vec = index.vectorizer.transform([last_block(text)])
        sims = (index.matrix @ query_vec.T).toarray().ravel()
        sims[[a is None for a in answers]] = -1.0
        best = int(np.argmax(sims))
        return best, "nearest", float(max(sims[best], 0.0))

    def _reply_parts(self, llm: str, body: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        messages = body.get("messages") or []
        text = last_user_text(messages)
        row, match, similarity = self.lookup(llm, text)
        index = self._load()
        detail = {
            "backend": self.name,
            "match": match,
            "similarity": round(similarity, 4),
            "sample_id": index.sample_ids[row],
            "recorded_query": index.queries[row][:200],
        }
        return str(index.responses[llm][row]), detail, row

    async def complete(self, llm: str, model: str, body: dict[str, Any]) -> BackendReply:
        """The recorded answer with its recorded quality and cost."""
        t0 = time.perf_counter()
        answer, detail, row = self._reply_parts(llm, body)
        answer, finish = cut_answer(answer, body)
        index = self._load()
        return BackendReply(
            text=answer,
            prompt_tokens=count_tokens(prompt_text(body.get("messages") or [])),
            completion_tokens=count_tokens(answer),
            latency_s=time.perf_counter() - t0,
            finish_reason=finish,
            cost_usd=_finite(index.cost[llm][row]),
            quality=_finite(index.quality[llm][row]),
            detail=detail,
        )

    async def open_stream(self, llm: str, model: str, body: dict[str, Any]) -> BackendStream:
        """The recorded answer cut in small pieces, as OpenAI chunks."""
        answer, detail, row = self._reply_parts(llm, body)
        answer, finish = cut_answer(answer, body)
        index = self._load()

        async def chunks() -> AsyncIterator[dict[str, Any]]:
            yield {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}
            for i in range(0, len(answer), REPLAY_CHUNK_CHARS):
                piece = answer[i : i + REPLAY_CHUNK_CHARS]
                yield {"choices": [{"index": 0, "delta": {"content": piece}}]}
            yield {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}

        return BackendStream(
            chunks(),
            detail,
            quality=_finite(index.quality[llm][row]),
            cost_usd=_finite(index.cost[llm][row]),
        )


def cut_answer(answer: str, body: dict[str, Any]) -> tuple[str, str]:
    """(answer cut as the request asks, finish_reason): before the first ``stop`` sequence
    ("stop"), then to at most max_completion_tokens / max_tokens tokens ("length")."""
    stops = body.get("stop") or []
    for stop in [stops] if isinstance(stops, str) else stops:
        at = answer.find(stop)
        if at >= 0:
            answer = answer[:at]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is None or count_tokens(answer) <= limit:
        return answer, "stop"
    lo, hi = 0, len(answer)  # the longest prefix within the limit (counts grow with length)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(answer[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return answer[:lo], "length"


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _build_index(path: Path) -> _ReplayIndex:
    """Read RouterBench wide data and index its recorded answers for lookup."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from mixllm.data.loaders import COST_SUFFIX, RESPONSE_SUFFIX, last_block, parse_turns, read_path
    from mixllm.data.loaders import routerbench_llms as discover

    df = read_path(path)
    llms = discover(df.columns)
    if not llms or "prompt" not in df.columns:
        raise DataError(f"{path}: not RouterBench data (no '<llm>{COST_SUFFIX}' / prompt columns)")
    df = df[df["prompt"].notna()]
    if "sample_id" in df.columns:
        df = df.drop_duplicates("sample_id")
    df = df.reset_index(drop=True)
    turns = df["prompt"].map(parse_turns)
    prompts = ["\n\n".join(t) for t in turns]
    queries = [last_block(t[-1]) if t else "" for t in turns]
    exact: dict[str, int] = {}
    for i, (query, prompt) in enumerate(zip(queries, prompts, strict=True)):
        exact.setdefault(_norm(query), i)
        exact.setdefault(_norm(prompt), i)
    responses: dict[str, list[str | None]] = {}
    for llm in llms:
        column = f"{llm}{RESPONSE_SUFFIX}"
        values = df[column] if column in df.columns else [None] * len(df)
        responses[llm] = [_answer_text(v) for v in values]
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    matrix = vectorizer.fit_transform(queries)
    ids = df["sample_id"].astype(str).tolist() if "sample_id" in df.columns else []
    return _ReplayIndex(
        sample_ids=ids or [str(i) for i in range(len(df))],
        queries=queries,
        responses=responses,
        quality={m: _column(df, m) for m in llms},
        cost={m: _column(df, f"{m}{COST_SUFFIX}") for m in llms},
        exact=exact,
        vectorizer=vectorizer,
        matrix=matrix,
    )


def _answer_text(value: Any) -> str | None:
    from mixllm.data.loaders import parse_turns

    turns = parse_turns(value)
    return "\n\n".join(turns) if turns else None


def _column(df: Any, name: str) -> np.ndarray:
    import pandas as pd

    if name not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


# -- OpenAI-compatible HTTP ------------------------------------------------------------


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


def _accepts_connection(base_url: str) -> bool:
    """True if the host of ``base_url`` accepts a TCP connection (nothing is sent)."""
    url = urlparse(base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError as exc:
        log.warning("backend %s is not reachable: %s", base_url, exc)
        return False


# -- registry --------------------------------------------------------------------------


def make_backend(spec: BackendSpec) -> Backend:
    """The backend object for a spec."""
    if spec.kind == "replay":
        return ReplayBackend(spec.name, spec.data_path)
    assert spec.base_url is not None  # the spec validator guarantees it
    return OpenAIBackend(spec.name, spec.base_url, spec.api_key_env, spec.timeout_s)


class BackendRegistry:
    """Named backends and the LLM -> (backend, model id) table, changeable at runtime."""

    def __init__(self, config: BackendsConfig | None = None) -> None:
        config = config or BackendsConfig(
            backends=[BackendSpec(name="replay", kind="replay")], default_backend="replay"
        )
        self.config = config
        self.default_backend = config.default_backend
        self._backends: dict[str, Backend] = {s.name: make_backend(s) for s in config.backends}
        self._routes: dict[str, LLMRoute] = {r.name: r for r in config.llms}
        self._lock = threading.Lock()

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> BackendRegistry:
        """Registry from the backends YAML (see ``load_backends_config``)."""
        return cls(load_backends_config(path))

    def backend(self, name: str) -> Backend:
        """The backend called ``name``."""
        try:
            return self._backends[name]
        except KeyError:
            raise InvalidRequestError(
                f"unknown backend {name!r}; configured: {', '.join(self._backends)}"
            ) from None

    def resolve(self, llm: str) -> tuple[Backend, str]:
        """(backend, model id) that answers ``llm``."""
        route = self._routes.get(llm)
        if route is None:
            return self.backend(self.default_backend), llm
        return self.backend(route.backend), route.model or llm

    def routes(self) -> list[LLMRoute]:
        """The explicit LLM -> backend entries (from YAML and POST /llms)."""
        return list(self._routes.values())

    def add_backend(self, spec: BackendSpec) -> Backend:
        """Declare a backend (replacing one of the same name)."""
        backend = make_backend(spec)
        with self._lock:
            self._backends[spec.name] = backend
        return backend

    def set_route(self, route: LLMRoute) -> None:
        """Send ``route.name`` to ``route.backend`` from now on."""
        self.backend(route.backend)  # fail on an unknown backend before changing anything
        with self._lock:
            self._routes[route.name] = route

    def drop_route(self, llm: str) -> None:
        """Forget the explicit entry of ``llm`` (it falls back to the default backend)."""
        with self._lock:
            self._routes.pop(llm, None)

    def check_answerable(self, name: str, model: str) -> None:
        """InvalidRequestError unless backend ``name`` can answer ``model`` now: a replay
        backend must hold recorded answers of it; an OpenAI-compatible one must have its
        key (if it names one) and accept a connection within ``PROBE_TIMEOUT_S``."""
        backend = self.backend(name)
        if isinstance(backend, ReplayBackend):
            try:
                recorded = backend.llms()
            except MixLLMError as exc:
                log.warning("replay backend %s cannot load its data: %s", name, exc)
                raise InvalidRequestError(f"backend {name!r} cannot answer right now") from None
            if model not in recorded:
                raise InvalidRequestError(
                    f"backend {name!r} (replay) has no recorded answers of {model!r}; "
                    f"it can answer: {', '.join(recorded)}"
                )
            return
        if isinstance(backend, OpenAIBackend):
            if backend.api_key_env and not os.environ.get(backend.api_key_env):
                raise InvalidRequestError(f"backend {name!r} has no API key configured")
            if not _accepts_connection(backend.base_url):
                raise InvalidRequestError(f"backend {name!r} is not reachable")

    def describe(self, llm: str) -> dict[str, Any]:
        """Backend name, kind and model id that answer ``llm``."""
        backend, model = self.resolve(llm)
        return {"backend": backend.name, "kind": backend.kind, "model": model}

    def describe_all(self) -> list[dict[str, Any]]:
        """Every configured backend, JSON-ready."""
        return [b.describe() for b in self._backends.values()]
