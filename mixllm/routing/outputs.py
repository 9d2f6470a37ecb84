"""What routing returns: decisions, per-candidate scores and prediction matrices; and the
one place where a batch of queries becomes texts plus token counts."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixllm.core.bounds import finite_or_none
from mixllm.core.errors import InvalidRequestError
from mixllm.core.text import check_text
from mixllm.core.tokens import count_tokens_many


@dataclass
class CandidateScore:
    """One candidate LLM's predictions for a query (quality in [0, 1], cost in $, seconds)."""

    llm: str
    quality: float
    cost: float
    latency_s: float
    uncertainty: float
    score: float


@dataclass
class Decision:
    """The routing decision for one query."""

    llm: str
    tags: list[str]
    candidates: list[CandidateScore]
    lambda_: float
    budget_usd: float
    prompt_tokens: int = 0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready view (a copy: changing it leaves the decision alone). A number that is
        not finite (an unreachable LLM's infinite wait, a NaN prediction) becomes None, as
        strict JSON has no NaN or infinity."""
        # built by hand: dataclasses.asdict deep-copies every score (~0.4 ms per /route)
        return {
            "llm": self.llm,
            "tags": list(self.tags),
            "candidates": [
                {k: finite_or_none(v) if isinstance(v, float) else v for k, v in vars(c).items()}
                for c in self.candidates
            ],
            "budget_usd": finite_or_none(self.budget_usd),
            "prompt_tokens": self.prompt_tokens,
            "extra": json_safe(copy.deepcopy(self.extra)),
            "lambda": finite_or_none(self.lambda_),
        }


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (nested in dicts, lists, tuples) as None."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


@dataclass
class Predictions:
    """Per-query, per-LLM predictions (n, k) for evaluation and inspection."""

    llms: list[str]
    quality: np.ndarray
    cost: np.ndarray
    uncertainty: np.ndarray
    latency_s: np.ndarray
    tags: list[list[str]]


def as_batch(queries: pd.DataFrame | Sequence[str] | str) -> tuple[list[str], np.ndarray]:
    """Texts and their (n, 2) token counts: prompt tokens (paid for) and routed-query tokens.

    A frame may carry ``prompt_tokens`` (or a ``prompt`` column to count them from);
    plain strings are their own prompt. Raises ``InvalidRequestError`` on empty or
    non-text queries and on text that is not valid Unicode (``mixllm.core.text``).
    """
    if isinstance(queries, str):
        queries = [queries]
    if isinstance(queries, pd.DataFrame):
        if "query" not in queries:
            raise InvalidRequestError("queries frame needs a 'query' column")
        texts = queries["query"].tolist()
    else:
        texts = list(queries)
    bad = [i for i, q in enumerate(texts) if not isinstance(q, str) or not q.strip()]
    if bad:
        raise InvalidRequestError(f"empty or non-text query at position(s) {bad[:5]}")
    for i, q in enumerate(texts):
        check_text(q, f"query {i}")
    q_tokens = count_tokens_many(texts).astype(float)
    if isinstance(queries, pd.DataFrame) and "prompt_tokens" in queries:
        prompt = queries["prompt_tokens"].to_numpy(dtype=float)
    elif isinstance(queries, pd.DataFrame) and "prompt" in queries:
        prompt = count_tokens_many(queries["prompt"].astype(str).tolist()).astype(float)
    else:
        prompt = q_tokens
    return texts, np.column_stack([prompt, q_tokens])
