"""Small text helpers of the service: timestamps and one-line exception messages."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """The current time, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat()
