"""Text fit for errors, logs and public health bodies: store URLs without their secrets."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# query parameters that carry a credential in database / http URLs
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|auth|cred|sig", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with every credential hidden: the whole user-info part (``user:pass@``, or a
    bare token written as ``token@host``) and secret-looking query parameters."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
        query = urlencode(
            [(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in parse_qsl(parts.query)],
            safe="*",
        )
        if not parts.scheme:
            return urlunsplit(("", netloc, parts.path, query, parts.fragment))
        # by hand: urlunsplit drops the '//' of an empty host (sqlite:////abs/path)
        out = f"{parts.scheme}://{netloc}{parts.path}"
        return (
            out + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
        )
    except ValueError:
        return "<unparseable url>"


def public_url(url: str) -> str:
    """What an anonymous health probe may see of a store URL: its scheme and host, never
    credentials or file paths (``sqlite:///…/mlflow.db`` shows only the file name)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if not host:  # a file-based store: the file name alone
        name = parts.path.rstrip("/").rsplit("/", 1)[-1]
        return f"{parts.scheme}:///…/{name}" if name else f"{parts.scheme}://"
    return f"{parts.scheme}://{host}"
