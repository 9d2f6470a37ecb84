"""The service's knobs and the environment variables that set them."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from mixllm.core.errors import ConfigError

MAX_QUERY_CHARS_ENV = "MIXLLM_MAX_QUERY_CHARS"
DEFAULT_MAX_QUERY_CHARS = 20_000


def max_query_chars() -> int:
    """The longest query accepted: $MIXLLM_MAX_QUERY_CHARS, else 20,000 characters."""
    return _chars_limit(MAX_QUERY_CHARS_ENV, DEFAULT_MAX_QUERY_CHARS, strict=False)


MAX_PROMPT_CHARS_ENV = "MIXLLM_MAX_PROMPT_CHARS"
DEFAULT_MAX_PROMPT_CHARS = 1_000_000  # ~250k tokens: above the largest context window


def max_prompt_chars() -> int:
    """The longest conversation accepted (all messages): $MIXLLM_MAX_PROMPT_CHARS, else 1M."""
    return _chars_limit(MAX_PROMPT_CHARS_ENV, DEFAULT_MAX_PROMPT_CHARS, strict=False)


def _chars_limit(name: str, default: int, *, strict: bool = True) -> int:
    """$``name`` as a whole number >= 1. A bad value raises ConfigError, or with
    ``strict=False`` (per request: `mixllm serve` refuses it at start) gives ``default``."""
    try:
        return int(env_number(name, default, 1, integer=True))
    except ConfigError:
        if strict:
            raise
        return default


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


def env_number(
    name: str,
    default: float,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    integer: bool = False,
) -> float:
    """$``name`` as a number in [``low``, ``high``] (a whole one if ``integer``); ``default``
    when unset or blank; ConfigError naming the variable and the range otherwise."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    kind = "a whole number" if integer else "a number"
    text = raw.strip()
    # float() and int() also take "1_0", "nan" and "inf": the pattern keeps plain numbers
    value = float(text) if _NUMBER.fullmatch(text) else math.nan
    if integer and math.isfinite(value) and not _INTEGER.fullmatch(text):
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        bounds = f"in [{low:g}, {high:g}]" if math.isfinite(high) else f">= {low:g}"
        raise ConfigError(f"{name} must be {kind} {bounds}, got {raw!r}")
    return value


@dataclass
class ServiceSettings:
    """The service's knobs; ``from_env`` documents the environment variables."""

    model_name: str = "mixllm-router"
    tracking_uri: str | None = None  # None: mixllm.registry.tracking.tracking_uri()
    feedback_url: str | None = None  # None: mixllm.registry.feedback.default_url()
    state_url: str | None = None  # shared online state; None: SQLite under $MIXLLM_HOME/service
    state_namespace: str = "mixllm"  # key prefix in that store (one per service sharing it)
    backends_path: str | None = None  # None: $MIXLLM_BACKENDS or the packaged file
    poll_s: float = 30.0  # how often to look for a new champion (0: never)
    retrain_threshold: int = 200  # new feedback rows that start a retraining run (0: never)
    retrain_min_gap_s: float = 600.0  # at most one retraining trigger per this many seconds
    retrain_deployment: str = "mixllm-retrain/mixllm-retrain"  # Prefect "<flow>/<deployment>"
    batch_max: int = 32  # most queries embedded together by the batcher
    batch_wait_ms: float = 2.0  # how long the batcher waits for company once busy
    embed_cache_size: int = 4096  # recent query embeddings kept in memory (0: none)
    # ONNX Runtime threads of the served encoder (None: one per core). One: under load the
    # requests keep the cores busy, and idle session threads spin, taking CPU from them.
    encoder_threads: int | None = 1
    # checked at start (`mixllm serve` refuses bad values); each request reads the variables
    max_query_chars: int = DEFAULT_MAX_QUERY_CHARS
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS

    @classmethod
    def from_env(cls) -> ServiceSettings:
        """Settings from MIXLLM_* environment variables (see docs/SERVICE.md)."""
        env = os.environ
        return cls(
            model_name=env.get("MIXLLM_MODEL_NAME", cls.model_name),
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            feedback_url=env.get("MIXLLM_FEEDBACK_URL") or None,
            state_url=env.get("MIXLLM_STATE_URL") or None,
            state_namespace=env.get("MIXLLM_STATE_NAMESPACE") or cls.state_namespace,
            backends_path=env.get("MIXLLM_BACKENDS") or None,
            poll_s=env_number("MIXLLM_CHAMPION_POLL_S", cls.poll_s, 0),
            retrain_threshold=int(
                env_number("MIXLLM_RETRAIN_THRESHOLD", cls.retrain_threshold, 0, integer=True)
            ),
            retrain_min_gap_s=env_number("MIXLLM_RETRAIN_MIN_GAP_S", cls.retrain_min_gap_s, 0),
            retrain_deployment=env.get("MIXLLM_RETRAIN_DEPLOYMENT", cls.retrain_deployment),
            batch_max=int(env_number("MIXLLM_BATCH_MAX", cls.batch_max, 1, 1024, integer=True)),
            batch_wait_ms=env_number("MIXLLM_BATCH_WAIT_MS", cls.batch_wait_ms, 0, 1000),
            embed_cache_size=int(
                env_number("MIXLLM_EMBED_CACHE_SIZE", cls.embed_cache_size, 0, integer=True)
            ),
            encoder_threads=_threads(cls.encoder_threads),
            max_query_chars=_chars_limit(MAX_QUERY_CHARS_ENV, DEFAULT_MAX_QUERY_CHARS),
            max_prompt_chars=_chars_limit(MAX_PROMPT_CHARS_ENV, DEFAULT_MAX_PROMPT_CHARS),
        )


def _threads(default: int | None) -> int | None:
    """MIXLLM_ENCODER_THREADS: a count from 1 to 256, or 0 for ONNX Runtime's default (one
    per physical core: None)."""
    value = env_number("MIXLLM_ENCODER_THREADS", -1, 0, 256, integer=True)
    if value < 0:  # unset or blank
        return default
    return int(value) or None
