"""LLM backends behind the service: recorded RouterBench answers (``replay``,
``mixllm.serving.replay``) and any OpenAI-compatible chat-completions endpoint (``openai``,
``mixllm.serving.openai_backend``), configured by the operator in YAML, and the registry
that says which backend answers each LLM.

Backends speak the OpenAI chat-completions dialect: a request is the client's JSON body, a
reply carries the answer text, token usage and, for replay, the recorded quality and cost.
Failures become ``BackendError`` (the service answers 502) or ``BackendTimeoutError`` (504).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mixllm.core.errors import ConfigError, InvalidRequestError, MixLLMError
from mixllm.serving.openai_backend import OpenAIBackend, accepts_connection
from mixllm.serving.replay import ReplayBackend, cut_answer
from mixllm.serving.replies import (
    Backend,
    BackendReply,
    BackendStream,
    content_text,
    last_user_text,
    prompt_text,
)

__all__ = [
    "Backend",
    "BackendRegistry",
    "BackendReply",
    "BackendSpec",
    "BackendStream",
    "BackendsConfig",
    "LLMRoute",
    "OpenAIBackend",
    "ReplayBackend",
    "content_text",
    "cut_answer",
    "last_user_text",
    "load_backends_config",
    "make_backend",
    "prompt_text",
]

log = logging.getLogger(__name__)

BACKENDS_ENV = "MIXLLM_BACKENDS"
BACKENDS_RESOURCE = "backends.yaml"
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
            if not accepts_connection(backend.base_url):
                raise InvalidRequestError(f"backend {name!r} is not reachable")

    def describe(self, llm: str) -> dict[str, Any]:
        """Backend name, kind and model id that answer ``llm``."""
        backend, model = self.resolve(llm)
        return {"backend": backend.name, "kind": backend.kind, "model": model}

    def describe_all(self) -> list[dict[str, Any]]:
        """Every configured backend, JSON-ready."""
        return [b.describe() for b in self._backends.values()]
