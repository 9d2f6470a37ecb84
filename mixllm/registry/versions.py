"""Registering a router version and aliasing it, all or nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mixllm.core.errors import RegistryError, first_line
from mixllm.registry.gate import GateDecision
from mixllm.registry.stores import (
    MODEL_NAME,
    TAG_GATE,
    TAG_GATE_REASON,
    client,
    current_alias_version,
    is_missing,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion


@dataclass(frozen=True)
class RegisteredVersion:
    """The outcome of one training run in the registry."""

    name: str
    version: str
    alias: str
    reason: str
    run_id: str
    experiment_id: str
    model_uri: str


def register(
    model_uri: str,
    decision: GateDecision,
    *,
    run_id: str,
    model_id: str | None = None,
    name: str = MODEL_NAME,
    tags: Mapping[str, str] | None = None,
    uri: str | None = None,
    after: Callable[[ModelVersion], None] | None = None,
) -> ModelVersion:
    """Register ``model_uri`` as a new version of ``name`` and alias it as decided.

    All or nothing: if anything after creating the version fails (including ``after``, a
    hook for the caller's own bookkeeping), the version (and the registered model, if this
    call created it) is deleted again and RegistryError raised.
    """
    c = client(uri)
    created_model = _ensure_registered_model(c, name)
    version_tags = {
        TAG_GATE: decision.alias,
        TAG_GATE_REASON: decision.reason[:5000],
        **(tags or {}),
    }
    previous = None if created_model else current_alias_version(name, decision.alias, uri)
    mv = None
    try:
        mv = c.create_model_version(
            name,
            source=model_uri,
            run_id=run_id,
            tags=version_tags,
            description=decision.reason,
            model_id=model_id,
        )
        c.set_registered_model_alias(name, decision.alias, mv.version)
        if after is not None:
            after(mv)
        return mv
    except Exception as exc:
        try:
            _rollback(c, name, mv, created_model, (decision.alias, previous))
        except Exception as undo:
            where = f"version {mv.version}" if mv is not None else "the registered model"
            raise RegistryError(
                f"registering {name} failed ({first_line(exc)}) and undoing it failed too "
                f"({first_line(undo)}): check {where} by hand"
            ) from exc
        raise RegistryError(
            f"registering {name} failed, registry left as it was: {first_line(exc)}"
        ) from exc


def _ensure_registered_model(c: MlflowClient, name: str) -> bool:
    """Create the registered model if missing; True if this call created it."""
    try:
        c.get_registered_model(name)
        return False
    except Exception as exc:
        if not is_missing(exc):
            raise
    try:
        c.create_registered_model(name, description="MixLLM routers, one version per training run")
        return True
    except Exception:
        c.get_registered_model(name)  # created concurrently: fine, it is not ours to delete
        return False


def _rollback(
    c: MlflowClient,
    name: str,
    mv: ModelVersion | None,
    created_model: bool,
    alias: tuple[str, str | None],
) -> None:
    """Undo a half-done registration: alias back where it was, new version and model gone."""
    label, previous = alias
    if previous is not None:
        with contextlib.suppress(Exception):  # an alias MLflow refused never moved
            c.set_registered_model_alias(name, label, previous)
    if mv is not None:
        c.delete_model_version(name, mv.version)
    if created_model:
        c.delete_registered_model(name)
