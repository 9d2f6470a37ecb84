"""The online state of a served router, kept apart from the immutable trained artifact.

Everything that changes while a router serves lives here: the candidate set, LLMs added at
runtime (price, speed, prior quality), the LinUCB statistics learned from feedback and the
cost / latency scales learned from observed outcomes. A ``StateStore`` holds it; the
in-process ``MemoryStateStore`` is the default, and any store with the same two methods
(e.g. one over Redis) lets several workers share one state.

Reads are lock-free snapshots: a transaction changes a COPY and swaps it in, so a decision
never sees a half-applied update.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from mixllm.core.prices import LLMSpec
from mixllm.routing.bandit import LinUCB

T = TypeVar("T")

STATE_FORMAT_VERSION = 1


@dataclass
class RuntimeLLM:
    """An LLM added while serving: its spec and the quality assumed before any feedback."""

    spec: LLMSpec
    prior_quality: float


@dataclass
class OnlineState:
    """Mutable serving state; ``version`` counts the transactions applied to it."""

    active: list[str]  # candidates a query may be routed to, in order
    known: list[str]  # every LLM ever a candidate (removed ones keep what they learned)
    bandit: LinUCB
    cost_scale: dict[str, float]
    latency_scale: dict[str, float]
    added: dict[str, RuntimeLLM] = field(default_factory=dict)
    version: int = 0

    @classmethod
    def initial(cls, llms: list[str], bandit_prior: LinUCB) -> OnlineState:
        """The state of a freshly trained router: every trained LLM active, nothing learned."""
        return cls(
            active=list(llms),
            known=list(llms),
            bandit=bandit_prior.copy(),
            cost_scale=dict.fromkeys(llms, 1.0),
            latency_scale=dict.fromkeys(llms, 1.0),
        )

    def copy(self) -> OnlineState:
        """An independent copy (what a transaction changes)."""
        return OnlineState(
            list(self.active),
            list(self.known),
            self.bandit.copy(),
            dict(self.cost_scale),
            dict(self.latency_scale),
            dict(self.added),
            self.version,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: what a shared store keeps and a restart resumes from."""
        arrays = self.bandit.to_arrays()
        return {
            "format_version": STATE_FORMAT_VERSION,
            "version": self.version,
            "active": self.active,
            "known": self.known,
            "cost_scale": self.cost_scale,
            "latency_scale": self.latency_scale,
            "added": {
                name: {"spec": r.spec.model_dump(), "prior_quality": r.prior_quality}
                for name, r in self.added.items()
            },
            "bandit": {k: v.tolist() for k, v in arrays.items()},
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> OnlineState:
        """Inverse of ``to_dict``; a different format version is refused by name."""
        from mixllm.core.errors import ConfigError

        if raw.get("format_version") != STATE_FORMAT_VERSION:
            raise ConfigError(
                f"online state has format {raw.get('format_version')!r}, "
                f"this mixllm reads {STATE_FORMAT_VERSION}"
            )
        bandit = {k: np.asarray(v) for k, v in raw["bandit"].items()}
        bandit["llms"] = np.asarray(raw["bandit"]["llms"], dtype=str)
        return cls(
            active=list(raw["active"]),
            known=list(raw["known"]),
            bandit=LinUCB.from_arrays(bandit),
            cost_scale={k: float(v) for k, v in raw["cost_scale"].items()},
            latency_scale={k: float(v) for k, v in raw["latency_scale"].items()},
            added={
                name: RuntimeLLM(LLMSpec(**r["spec"]), float(r["prior_quality"]))
                for name, r in raw["added"].items()
            },
            version=int(raw["version"]),
        )


class StateStore(Protocol):
    """Where a served router's ``OnlineState`` lives."""

    def read(self) -> OnlineState:
        """A consistent snapshot; callers must not change it."""
        ...

    def transact(self, change: Callable[[OnlineState], T]) -> T:
        """Apply ``change`` atomically to a copy of the state and publish it; return its result.

        If ``change`` raises, nothing is published.
        """
        ...

    def seed(self, state: OnlineState) -> OnlineState:
        """Hold ``state`` unless the store already holds one; return the held state."""
        ...


class MemoryStateStore:
    """In-process store: copy-on-write under a lock, lock-free reads."""

    def __init__(self, state: OnlineState | None = None) -> None:
        self._state = state
        self._lock = threading.Lock()

    def read(self) -> OnlineState:
        """The current snapshot; raises ``NotFittedError`` before the first ``seed``."""
        if self._state is None:
            from mixllm.core.errors import NotFittedError

            raise NotFittedError("the state store holds no online state yet")
        return self._state

    def seed(self, state: OnlineState) -> OnlineState:
        """Hold ``state`` unless a state is already held; return the held one."""
        with self._lock:
            if self._state is None:
                self._state = state
            return self._state

    def __deepcopy__(self, memo: dict) -> MemoryStateStore:
        # a copied router must learn on its own state (and a lock cannot be copied)
        return MemoryStateStore(None if self._state is None else self._state.copy())

    def __getstate__(self) -> dict:
        # shipped to another process (a Dask worker): the state travels, the lock does not
        return {"state": self._state}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["state"])

    def transact(self, change: Callable[[OnlineState], T]) -> T:
        """See ``StateStore.transact``."""
        with self._lock:
            new = self.read().copy()
            result = change(new)
            new.version += 1
            self._state = new
            return result


def candidate_mask(state: OnlineState, candidates: Sequence[str] | None) -> np.ndarray:
    """(k,) bool over ``state.known``: the active LLMs, or ``candidates`` among them.

    Raises ``UnknownLLMError`` on unknown or removed names, ``InvalidRequestError`` on an
    empty set.
    """
    from mixllm.core.errors import InvalidRequestError, UnknownLLMError

    if candidates is None:
        names = set(state.active)
    else:
        unknown = [c for c in candidates if c not in state.active]
        if unknown:
            raise UnknownLLMError(
                f"unknown or removed LLM(s) in candidates: {', '.join(unknown)}; "
                f"active: {', '.join(state.active)}"
            )
        names = set(candidates)
    if not names:
        raise InvalidRequestError("no candidate LLM to route to")
    return np.array([m in names for m in state.known])
