"""Runtime changes to the candidate set (POST and DELETE /llms): the changes kept across hot
swaps, the backend that answers a new LLM, and lookups on a router's candidates."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from mixllm.core.errors import InvalidRequestError, MixLLMError, UnknownLLMError
from mixllm.routing.context import fit_context
from mixllm.serving.backends import BackendRegistry
from mixllm.serving.requests import AddLLMRequest

log = logging.getLogger(__name__)


def add_to_router(router: Any, req: AddLLMRequest) -> None:
    """Make ``req.name`` a candidate of ``router`` with the request's prices and speed."""
    router.add_llm(
        req.name,
        input_price=req.input_price,
        output_price=req.output_price,
        tokens_per_s=req.tokens_per_s,
        ttft_s=req.ttft_s,
        concurrency=req.concurrency,
        prior_quality=req.prior_quality,
    )


@dataclass
class Overrides:
    """Candidate-set changes made at runtime, re-applied to every new champion."""

    added: dict[str, AddLLMRequest] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)

    @classmethod
    def from_backends(cls, backends: BackendRegistry) -> Overrides:
        """LLMs priced in the backends file become candidates of every champion."""
        out = cls()
        for route in backends.routes():
            if route.input_price is None or route.output_price is None:
                continue
            out.added[route.name] = AddLLMRequest(
                name=route.name,
                input_price=route.input_price,
                output_price=route.output_price,
                backend=route.backend,
                model=route.model,
                tokens_per_s=route.tokens_per_s,
                concurrency=route.concurrency,
            )
        return out

    def record_added(self, req: AddLLMRequest) -> None:
        """Remember that ``req.name`` was added."""
        self.added[req.name] = req
        self.removed.discard(req.name)

    def record_removed(self, name: str) -> None:
        """Remember that ``name`` was removed."""
        self.added.pop(name, None)
        self.removed.add(name)

    def apply(self, router: Any) -> None:
        """Re-apply every change to a freshly loaded ``router`` (it keeps one candidate).

        Idempotent, and safe when other workers re-apply the same changes to the same
        shared state at the same time."""
        for name, req in self.added.items():
            if name in router.llms_:
                continue
            try:
                add_to_router(router, req)
            except MixLLMError as exc:
                log.warning("cannot re-add LLM %s to the new router: %s", name, exc)
        for name in self.removed:
            if name not in router.llms_ or len(router.llms_) <= 1:
                continue
            try:
                router.remove_llm(name)
            except MixLLMError as exc:  # another worker, swapping too, removed it first
                log.info("LLM %s already removed from the new router: %s", name, exc)


def backend_for(req: AddLLMRequest, backends: BackendRegistry) -> str:
    """The configured backend that will answer ``req.name``; InvalidRequestError unless it
    exists and can answer that LLM now (see ``BackendRegistry.check_answerable``)."""
    name = req.backend or backends.default_backend
    backends.backend(name)  # InvalidRequestError for a backend the operator did not configure
    backends.check_answerable(name, req.model or req.name)
    return name


def eligible(
    router: Any,
    backends: BackendRegistry,
    candidates: list[str] | None,
    *,
    prompt_tokens: int,
    answer_tokens: int = 0,
    body: dict[str, Any] | None = None,
    fallback: Any = None,
) -> tuple[list[str], dict[str, str]]:
    """(LLMs that can take a request, {excluded LLM: why}): among ``candidates`` (default:
    the router's active LLMs), those whose backend honours the chat ``body``'s parameters
    and whose context window holds the prompt plus ``answer_tokens`` (``fit_context``;
    ``fallback``: a price table for windows the router's own lacks). InvalidRequestError
    with every reason when none can."""
    llms = list(candidates if candidates is not None else router.llms_)
    excluded: dict[str, str] = {}
    if body is not None:
        for llm in llms:
            why = backends.resolve(llm)[0].unsupported(body)
            if why is not None:
                excluded[llm] = why
    specs = {m: s for m in llms if (s := price_spec(router, m)) is not None}
    fits, too_long = fit_context(
        specs,
        prompt_tokens,
        [m for m in llms if m not in excluded],
        answer_tokens=answer_tokens,
        fallback=fallback,
    )
    excluded.update(too_long)
    if not fits:
        reasons = "; ".join(f"{llm}: {why}" for llm, why in excluded.items())
        raise InvalidRequestError(f"no candidate LLM can take this request ({reasons})")
    return fits, excluded


def check_active(router: Any, candidates: list[str]) -> None:
    """UnknownLLMError naming every one of ``candidates`` that ``router`` does not route to."""
    unknown = [c for c in candidates if c not in router.llms_]
    if unknown:
        raise UnknownLLMError(
            f"candidates: unknown or removed LLM(s) {', '.join(map(repr, unknown))}; "
            f"active: {', '.join(router.llms_)}"
        )


def price_spec(router: Any, llm: str) -> Any:
    """``router``'s price entry of ``llm``, None if it has none."""
    try:
        return router.spec(llm)
    except (KeyError, AttributeError, MixLLMError):
        return None
