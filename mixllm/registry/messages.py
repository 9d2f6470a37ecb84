"""Text fit for errors and logs: store URLs without their password."""

from __future__ import annotations


def redact_url(url: str) -> str:
    """The URL (database or http) without its password, fit for logs, errors and /healthz."""
    from urllib.parse import urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return "<unparseable url>"
    return url.replace(f":{password}@", ":***@", 1) if password else url
