"""Register routers in the test's MLflow store, the way the pipeline does, minus the training."""

from __future__ import annotations

from pathlib import Path


def register_router(
    router_dir: Path,
    *,
    alias: str = "champion",
    watermark: str | None = None,
    legacy: bool = False,
):
    """Log the saved router at ``router_dir`` as a new version aliased ``alias``; its version.
    ``legacy``: logged as versions were before the model config (no ``encoder_threads``)."""
    from mixllm.registry import pyfunc as mlflow_model
    from mixllm.registry.gate import GateDecision, GateScores
    from mixllm.registry.publish import training_run
    from mixllm.registry.stores import TAG_WATERMARK
    from mixllm.registry.versions import register

    with training_run(run_name="service-test") as run_id:
        info = _log_legacy(router_dir) if legacy else mlflow_model.log_router_dir(router_dir)
        decision = GateDecision(
            alias, "registered by the service tests", GateScores(0.0, 0.0, 0.0, 0.0)
        )
        tags = {TAG_WATERMARK: watermark} if watermark else None
        mv = register(info.model_uri, decision, run_id=run_id, model_id=info.model_id, tags=tags)
    return str(mv.version)


def _log_legacy(router_dir: Path):
    """The pyfunc model as logged before it carried a model config."""
    import mlflow

    from mixllm.registry import pyfunc as mlflow_model

    return mlflow.pyfunc.log_model(
        name="router",
        python_model=mlflow_model.RouterPyfunc(),
        artifacts={mlflow_model.ARTIFACT_KEY: str(router_dir)},
        signature=mlflow_model.signature(),
    )


def register_broken(alias: str = "champion") -> str:
    """A version whose artifacts are gone (as after a lost artifact store); its version."""
    from mixllm.registry.gate import GateDecision, GateScores
    from mixllm.registry.publish import training_run
    from mixllm.registry.versions import register

    with training_run(run_name="service-test-broken") as run_id:
        decision = GateDecision(alias, "broken on purpose", GateScores(0.0, 0.0, 0.0, 0.0))
        missing = Path("/nonexistent/mixllm-broken-model").as_uri()
        mv = register(missing, decision, run_id=run_id)
    return str(mv.version)
