"""API-key authentication of the service: bearer tokens from operator configuration, two roles.

Roles: ``route`` may route, chat, list models and LLMs and send feedback; ``admin`` may do
all that and change the candidate set (POST/DELETE /llms). Feedback needs ``route`` (not
``admin``) on purpose: the application that routed a request holds its request_id and is
the one that learns how good the answer was; an anonymous caller (no key) cannot send any.

Keys come from $MIXLLM_API_KEYS (``role:token`` pairs separated by commas) and/or the YAML
file $MIXLLM_API_KEYS_FILE (``keys: [{role: admin, key: ...}]``). With no key configured,
authentication is off, which is only allowed on a loopback address (``require_keys``).
Tokens are compared in constant time (``hmac.compare_digest``) and never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mixllm.core.errors import AuthenticationError, ConfigError, PermissionDeniedError

KEYS_ENV = "MIXLLM_API_KEYS"
KEYS_FILE_ENV = "MIXLLM_API_KEYS_FILE"
ROUTE = "route"
ADMIN = "admin"
ROLES = (ROUTE, ADMIN)
MIN_KEY_CHARS = 16  # a shorter token is guessable; refuse it at start


@dataclass(frozen=True)
class ApiKey:
    """One configured token and its role (repr hides the token)."""

    role: str
    token: str = field(repr=False)


def _check_key(role: str, token: str, source: str) -> ApiKey:
    role, token = role.strip(), token.strip()
    if role not in ROLES:
        raise ConfigError(f"{source}: unknown role {role!r}; roles: {', '.join(ROLES)}")
    if len(token) < MIN_KEY_CHARS:
        raise ConfigError(f"{source}: a {role} key is shorter than {MIN_KEY_CHARS} characters")
    return ApiKey(role, token)


def parse_keys(text: str, source: str = KEYS_ENV) -> list[ApiKey]:
    """Keys from ``role:token,role:token``; ConfigError naming the problem (never the token)."""
    keys = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        role, sep, token = item.partition(":")
        if not sep:
            raise ConfigError(f"{source}: each entry must be role:token")
        keys.append(_check_key(role, token, source))
    return keys


def read_keys_file(path: str | Path) -> list[ApiKey]:
    """Keys from a YAML file ``keys: [{role: ..., key: ...}]``."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read API keys file {path}: {type(exc).__name__}") from exc
    entries = raw.get("keys") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"API keys file {path}: expected 'keys: [{{role: ..., key: ...}}]'")
    keys = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise ConfigError(f"API keys file {path}: entry {i} needs role and key")
        keys.append(_check_key(str(entry.get("role", "")), entry["key"], f"{path} entry {i}"))
    return keys


class ApiKeys:
    """The configured keys; ``check`` authenticates a request's Authorization header."""

    def __init__(self, keys: list[ApiKey] | None = None) -> None:
        self.keys = list(keys or [])

    @classmethod
    def from_env(cls) -> ApiKeys:
        """Keys from $MIXLLM_API_KEYS and $MIXLLM_API_KEYS_FILE (both may be set)."""
        keys = parse_keys(os.environ.get(KEYS_ENV, ""))
        path = os.environ.get(KEYS_FILE_ENV)
        if path:
            keys += read_keys_file(path)
        return cls(keys)

    @property
    def enabled(self) -> bool:
        """True if any key is configured (authentication on)."""
        return bool(self.keys)

    def role_of(self, token: str) -> str | None:
        """The role of ``token``, None if no key matches. Every key is compared, in constant
        time, so the answer time does not tell how much of a key was right."""
        found = None
        given = token.encode()
        for key in self.keys:
            if hmac.compare_digest(given, key.token.encode()):
                found = found or key.role
        return found

    def check(self, authorization: str | None, needed: str) -> str | None:
        """The caller's role if it may act as ``needed`` (None when authentication is off);
        AuthenticationError (401) without a valid key, PermissionDeniedError (403) for a
        ``route`` key on an ``admin`` action."""
        if not self.enabled:
            return None
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError(
                "missing API key: send 'Authorization: Bearer <key>' (see docs/SERVICE.md)"
            )
        role = self.role_of(token.strip())
        if role is None:
            raise AuthenticationError("invalid API key")
        if needed == ADMIN and role != ADMIN:
            raise PermissionDeniedError("this action needs an admin API key")
        return role


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; False for 0.0.0.0 and every other name."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name could resolve anywhere: treat it as exposed


def require_keys(host: str, keys: ApiKeys) -> None:
    """ConfigError unless the service may listen on ``host``: loopback, or keys configured."""
    if not keys.enabled and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without API keys: set {KEYS_ENV} "
            f"(e.g. 'route:<token>,admin:<token>') or {KEYS_FILE_ENV}, or bind 127.0.0.1"
        )
