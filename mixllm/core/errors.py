"""Domain exceptions. The library raises these; only the service edge turns them into HTTP 4xx."""


class MixLLMError(Exception):
    """Base class of every MixLLM domain error."""


class DataError(MixLLMError):
    """A data file is unreadable, malformed or empty."""


class ConfigError(MixLLMError):
    """A configuration, price table or backend file is invalid."""


class UnknownLLMError(MixLLMError, KeyError):
    """An LLM name is not (or no longer) a candidate."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown LLM"


class NotFittedError(MixLLMError):
    """The router was used before ``fit`` or ``load``."""


class InvalidRequestError(MixLLMError, ValueError):
    """A routing or feedback request is malformed (empty query, budget out of range, ...)."""


class RegistryError(MixLLMError):
    """The model registry is unreachable or in an unexpected state."""


class UnknownRequestError(InvalidRequestError, LookupError):
    """Feedback names a request_id that was never logged."""


class FeedbackStoreError(MixLLMError):
    """The feedback database is unreachable or failed to commit."""


class BackendError(MixLLMError):
    """A backend failed to answer (unreachable, HTTP error, malformed reply)."""


class BackendTimeoutError(BackendError):
    """A backend did not answer within its timeout."""


class NotFoundError(MixLLMError, LookupError):
    """A named resource (an LLM to delete) does not exist."""


class UnavailableError(MixLLMError):
    """The service cannot answer yet: no router is loaded."""


class StateStoreError(UnavailableError):
    """The shared online-state store (e.g. Redis) cannot be reached or keeps losing races."""


class AuthenticationError(MixLLMError):
    """A request has no valid API key (the service answers 401)."""


class PermissionDeniedError(MixLLMError):
    """A valid API key whose role may not do this (the service answers 403)."""


class PayloadTooLargeError(InvalidRequestError):
    """A request body or prompt is over its size limit (the service answers 413)."""


class DuplicateFeedbackError(MixLLMError):
    """Feedback on a request that already has its feedback (one per request_id)."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class EncoderCacheError(MixLLMError):
    """The encoder's ONNX export cache cannot be written or read (the router artifact is fine)."""
