"""``CandidateAdmin``: the candidate LLMs of the live champion at runtime: what each one is
(prices, backend, concurrency, requests in flight) and adding or removing one."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from mixllm.core.errors import InvalidRequestError, NotFoundError, UnknownLLMError
from mixllm.routing.shared_state import pinned_state
from mixllm.serving.backends import BackendRegistry, LLMRoute
from mixllm.serving.candidates import add_to_router, backend_for, price_spec
from mixllm.serving.champion import ChampionSlot
from mixllm.serving.inflight import InFlight
from mixllm.serving.requests import AddLLMRequest
from mixllm.serving.shared_state import SharedOverrides

log = logging.getLogger(__name__)


@dataclass(eq=False)
class CandidateAdmin:
    """Runtime candidate changes over the champion slot, and each candidate's price facts."""

    slot: ChampionSlot
    backends: BackendRegistry
    inflight: InFlight
    overrides: SharedOverrides
    # Held while the candidate set changes, so a champion swap never loses the change.
    swap_lock: threading.Lock

    def list_llms(self) -> dict[str, Any]:
        """Every LLM the router knows: active or not, prices, backend, requests in flight."""
        champion = self.slot.get()
        counts = self.inflight.snapshot()
        self.refresh()
        with pinned_state(getattr(champion.router, "store", None)):
            llms = [
                self._describe_llm(champion.router, llm, counts)
                for llm in champion.router.all_llms_
            ]
        return {
            "llms": llms,
            "reference_llm": getattr(champion.router, "reference_llm_", None),
            "router_version": champion.version,
        }

    def refresh(self) -> None:
        """Take up the backend routes of LLMs another worker or replica added."""
        self.overrides.sync_routes(self.backends)

    def _describe_llm(self, router: Any, llm: str, counts: dict[str, int]) -> dict[str, Any]:
        spec = price_spec(router, llm)
        return {
            "name": llm,
            "active": llm in router.llms_,
            "input_price": spec.input_price if spec else None,
            "output_price": spec.output_price if spec else None,
            "tokens_per_s": spec.tokens_per_s if spec else None,
            "concurrency": self.concurrency(llm),
            "in_flight": counts.get(llm, 0),
            **self.backends.describe(llm),
        }

    def add_llm(self, req: AddLLMRequest) -> dict[str, Any]:
        """Make ``req.name`` a candidate now, answered by the named (or declared) backend."""
        if req.name in self.slot.get().router.llms_:
            raise InvalidRequestError(f"LLM {req.name!r} is already a candidate")
        backend = backend_for(req, self.backends)
        with self.swap_lock:
            router = self.slot.get().router
            add_to_router(router, req)
            self.backends.set_route(LLMRoute(name=req.name, backend=backend, model=req.model))
            self.overrides.record_added(req.model_copy(update={"backend": backend}))
        log.info("LLM %s added (backend %s)", req.name, backend)
        return {"added": req.name, **self.backends.describe(req.name), "llms": router.llms_}

    def remove_llm(self, name: str) -> dict[str, Any]:
        """Stop routing to ``name`` at once; NotFoundError unless it is a candidate (also for
        the loser of two concurrent removals of one LLM, in any worker or replica)."""
        with self.swap_lock:
            router = self.slot.get().router
            self._check_removable(router, name)
            # Two compare-and-set writes, override first: a crash or race between them leaves
            # the removal recorded service-wide, and every load (restart, hot swap, re-seed)
            # re-applies the overrides, so a removed LLM never comes back. The other order
            # could lose the override and resurrect the LLM on the next champion.
            self.overrides.record_removed(name)
            try:
                router.remove_llm(name)
            except UnknownLLMError:  # another worker or replica removed it meanwhile
                raise NotFoundError(f"LLM {name!r} is not a candidate (already removed)") from None
        log.info("LLM %s removed", name)
        return {"removed": name, "llms": list(router.llms_)}

    @staticmethod
    def _check_removable(router: Any, name: str) -> None:
        """NotFoundError for an unknown LLM, InvalidRequestError for the last candidate
        (checked before the removal is recorded)."""
        active = router.llms_
        if name not in active:
            raise NotFoundError(f"LLM {name!r} is not a candidate; active: {', '.join(active)}")
        if len(active) == 1:
            raise InvalidRequestError("cannot remove the last candidate LLM")

    def concurrency(self, llm: str) -> int:
        """Requests ``llm`` serves at once: its backend route's setting, else its price spec's."""
        route = next((r for r in self.backends.routes() if r.name == llm), None)
        if route is not None and route.concurrency:
            return route.concurrency
        spec = price_spec(self.slot.get().router, llm)
        return int(spec.concurrency) if spec else 1

    def price(self, llm: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Dollars of one answer of ``llm``; None when the router has no price for it."""
        spec = price_spec(self.slot.get().router, llm)
        if spec is None:
            return None
        return float(spec.input_price * prompt_tokens + spec.output_price * completion_tokens)
