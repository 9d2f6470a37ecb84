"""Text fit for errors and logs: store URLs without their password, one-line exceptions."""

from __future__ import annotations


def redact_url(url: str) -> str:
    """The URL (database or http) without its password, fit for logs, errors and /healthz."""
    from urllib.parse import urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return "<unparseable url>"
    return url.replace(f":{password}@", ":***@", 1) if password else url


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
