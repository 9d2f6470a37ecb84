"""Which LLMs a prompt fits: the context-window check that runs before a routing decision.

An LLM's context window (``LLMSpec.context_window``, tokens of prompt plus answer) is a hard
limit: a longer request fails at the vendor or is silently truncated. The check is done on
the request's prompt tokens plus the answer tokens it asks for (``max_tokens``), and the
allowed set is passed to the router as its candidates; every excluded LLM gets a reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mixllm.core.prices import LLMSpec


def context_window(prices: Mapping[str, LLMSpec], llm: str, fallback: Any = None) -> int | None:
    """The context window of ``llm`` in ``prices``, else in ``fallback``; None if unknown."""
    for table in (prices, fallback):
        if table is None:
            continue
        spec = table.get(llm) if hasattr(table, "get") else None
        window = getattr(spec, "context_window", None)
        if window:
            return int(window)
    return None


def fit_context(
    prices: Mapping[str, LLMSpec],
    prompt_tokens: int,
    llms: Iterable[str],
    *,
    answer_tokens: int = 0,
    fallback: Mapping[str, LLMSpec] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """(LLMs whose window holds ``prompt_tokens`` + ``answer_tokens``, {excluded LLM: why}).

    An LLM without a known window is allowed (nothing says it cannot take the prompt).
    ``fallback`` is consulted for LLMs whose entry in ``prices`` has no window (a router
    trained before windows were recorded, checked against the packaged table).
    """
    needed = int(prompt_tokens) + max(0, int(answer_tokens))
    allowed: list[str] = []
    excluded: dict[str, str] = {}
    for llm in llms:
        window = context_window(prices, llm, fallback)
        if window is not None and needed > window:
            asked = f" + {answer_tokens} answer" if answer_tokens else ""
            excluded[llm] = (
                f"context window: the request needs {prompt_tokens} prompt{asked} tokens, "
                f"{llm} holds {window}"
            )
        else:
            allowed.append(llm)
    return allowed, excluded
