"""What the HTTP edge needs from the domain: a status code per error, a message per invalid
request body."""

from __future__ import annotations

from typing import Any

from mixllm.core.errors import (
    AuthenticationError,
    BackendError,
    BackendTimeoutError,
    ConfigError,
    DataError,
    DuplicateFeedbackError,
    FeedbackStoreError,
    InvalidRequestError,
    MixLLMError,
    NotFittedError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    UnavailableError,
    UnknownLLMError,
    UnknownRequestError,
)

# First match wins: subclasses come before their bases.
_STATUS: list[tuple[type[BaseException], int, str]] = [
    (DuplicateFeedbackError, 409, "conflict_error"),  # one feedback per request_id
    (AuthenticationError, 401, "authentication_error"),
    (PermissionDeniedError, 403, "permission_error"),
    (PayloadTooLargeError, 413, "invalid_request_error"),
    (UnknownRequestError, 404, "not_found_error"),
    (NotFoundError, 404, "not_found_error"),
    (BackendTimeoutError, 504, "backend_timeout"),
    (BackendError, 502, "backend_error"),
    (UnavailableError, 503, "service_unavailable"),
    (NotFittedError, 503, "service_unavailable"),
    (FeedbackStoreError, 503, "service_unavailable"),
    (DataError, 503, "service_unavailable"),  # data the service reads, never the request's
    (UnknownLLMError, 400, "invalid_request_error"),
    (InvalidRequestError, 400, "invalid_request_error"),
    (ConfigError, 400, "invalid_request_error"),
    (MixLLMError, 400, "invalid_request_error"),
]


def http_error(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, OpenAI error type) for an exception reaching the service edge."""
    for kind, status, name in _STATUS:
        if isinstance(exc, kind):
            return status, name
    return 500, "internal_error"


# What a caller reads for a server-side failure: the details (backend URLs, file paths,
# exception classes) go to the log under the request id, never into the response.
_PUBLIC = {
    500: "internal error",
    502: "the chosen LLM's backend failed to answer",
    503: "the service cannot answer right now (no router or store available)",
    504: "the chosen LLM's backend did not answer in time",
}


def public_message(exc: BaseException, status: int, request_id: str | None) -> str:
    """The error message a caller may see: the domain message for a 4xx, a fixed text
    naming the request id for a 5xx (the details are logged under that id)."""
    if status < 500:
        return str(exc)
    text = _PUBLIC.get(status, _PUBLIC[500])
    return f"{text} (request_id {request_id}; details in the service log)" if request_id else text


def describe_validation(errors: list[dict[str, Any]]) -> str:
    """One message naming every invalid field of a request body."""
    parts = []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        where = ".".join(loc) or "body"
        if err.get("type") in ("json_invalid", "json_type"):
            return "request body is not valid JSON" + _ctx_error(err)
        if err.get("type") == "model_attributes_type":
            return "request body must be a JSON object (sent as Content-Type: application/json)"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts) or "invalid request"


def bad_param(errors: list[dict[str, Any]]) -> str | None:
    """The first invalid field's dotted name (OpenAI's ``param``), None for the whole body."""
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        if loc and err.get("type") not in ("json_invalid", "model_attributes_type"):
            return ".".join(loc)
    return None


def _ctx_error(err: dict[str, Any]) -> str:
    detail = (err.get("ctx") or {}).get("error")
    return f" ({detail})" if detail else ""
