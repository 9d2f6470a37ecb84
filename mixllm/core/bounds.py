"""Documented bounds of every observed outcome that enters MixLLM (feedback, data files).

A value outside them is an error naming the field, never a silent clip: one bad number
(``cost: 1e308``) must not make every later score non-finite.
"""

from __future__ import annotations

import math

from mixllm.core.errors import InvalidRequestError

QUALITY_RANGE = (0.0, 1.0)  # graded quality; thumbs map to 1.0 / 0.0
MAX_COST_USD = 100.0  # $ for one call: 1M tokens of the priciest LLM here is ~$60
MAX_LATENCY_S = 3600.0  # end-to-end seconds: the longest backend timeout allowed is an hour


def finite_or_none(x: float) -> float | None:
    """``x`` as a float, None if it is NaN or infinite (strict JSON has neither)."""
    x = float(x)
    return x if math.isfinite(x) else None


def _check(name: str, value: float | None, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidRequestError(f"{name} must be a number, got {type(value).__name__}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"{name} is not a number: {value!r}") from None
    if not math.isfinite(x):
        raise InvalidRequestError(f"{name} is not a finite number: {value!r}")
    if not low <= x <= high:
        raise InvalidRequestError(f"{name} must be in [{low:g}, {high:g}], got {x:g}")
    return x


def check_quality(value: float | None, name: str = "quality") -> float | None:
    """``value`` as a float in [0, 1] (None passes); raises ``InvalidRequestError``."""
    return _check(name, value, *QUALITY_RANGE)


def check_cost(value: float | None, name: str = "cost") -> float | None:
    """``value`` as dollars in [0, MAX_COST_USD] (None passes)."""
    return _check(name, value, 0.0, MAX_COST_USD)


def check_latency(value: float | None, name: str = "latency_s") -> float | None:
    """``value`` as seconds in [0, MAX_LATENCY_S] (None passes)."""
    return _check(name, value, 0.0, MAX_LATENCY_S)
