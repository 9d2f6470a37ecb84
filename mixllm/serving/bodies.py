"""What every request body must be before any endpoint sees it; its texts follow the one
Unicode policy of ``mixllm.core.text`` (reject, naming where).

A body is also refused when it is over the size limit, not UTF-8, not JSON, nested deeper
than ``MAX_DEPTH``, or carries a non-finite number (``NaN``, ``Infinity``).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from mixllm.core.errors import InvalidRequestError, PayloadTooLargeError
from mixllm.core.text import check_text

MAX_BODY_BYTES_ENV = "MIXLLM_MAX_BODY_BYTES"
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024  # room for a 128k-token conversation in JSON
MAX_INT_DIGITS = 40  # no field needs more; Python refuses > 4300 digits with a ValueError
MAX_DEPTH = 32  # OpenAI bodies nest ~6 levels (messages -> content parts -> ...)
_TOO_DEEP = f"request body is nested deeper than {MAX_DEPTH} levels"


def max_body_bytes() -> int:
    """The largest request body accepted: $MIXLLM_MAX_BODY_BYTES, else 4 MiB."""
    try:
        return int(os.environ.get(MAX_BODY_BYTES_ENV, DEFAULT_MAX_BODY_BYTES))
    except ValueError:
        return DEFAULT_MAX_BODY_BYTES


class _NonFinite(str):
    """Stands for a ``NaN`` / ``Infinity`` literal until ``check_value`` names its field."""


def _no_constant(name: str) -> Any:
    return _NonFinite(name)


def _float(text: str) -> Any:
    value = float(text)
    # 1e400 parses to inf: as non-finite as the Infinity literal
    return value if math.isfinite(value) else _NonFinite(text)


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidRequestError(f"request body holds an integer of {len(text)} digits")
    return int(text)


def parse_body(raw: bytes, limit: int | None = None) -> Any:
    """The JSON value of a request body, checked (see the module docstring)."""
    limit = max_body_bytes() if limit is None else limit
    if len(raw) > limit:
        raise PayloadTooLargeError(f"request body is over the limit of {limit} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(
            f"request body is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise InvalidRequestError(
            f"request body is nested deeper than {MAX_DEPTH} levels"
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"request body is not valid JSON ({exc.msg} at {exc.pos})"
        ) from None
    check_value(value)
    return value


def check_value(value: Any) -> None:
    """InvalidRequestError for a JSON value nested too deep or holding invalid Unicode."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidRequestError(_TOO_DEEP)
        if isinstance(item, _NonFinite):
            raise InvalidRequestError(f"{where or 'request body'}: {item} is not a finite number")
        if isinstance(item, str):
            check_text(item, where or "body")
        elif isinstance(item, dict):
            for key, child in item.items():
                check_text(key, f"{where or 'body'} (a key)")
                stack.append((child, f"{where}.{key}" if where else str(key), depth + 1))
        elif isinstance(item, list):
            for i, child in enumerate(item):
                stack.append((child, f"{where}.{i}" if where else str(i), depth + 1))
