"""The served encoder's ONNX Runtime thread count comes from the service's settings
(MIXLLM_ENCODER_THREADS, default 1), whatever the trained artifact says, and a bad value stops
`mixllm serve` in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixllm.core.errors import ConfigError
from mixllm.serving import RoutingService, ServiceSettings
from tests.service._registry import register_router
from tests.stores import patched_env
from tests.tiny_data import query

pytestmark = [pytest.mark.service, pytest.mark.timeout(300)]


@pytest.mark.parametrize(("threads", "onnx_threads"), [(1, 1), (None, 0)])
def test_the_served_encoder_uses_the_service_thread_setting(
    mlflow_uri: str,
    router_dir: Path,
    service_env: dict[str, str],
    tmp_path: Path,
    threads: int | None,
    onnx_threads: int,
) -> None:
    register_router(router_dir)
    settings = ServiceSettings(poll_s=0, retrain_threshold=0, encoder_threads=threads)
    with patched_env({"MIXLLM_HOME": str(tmp_path / "home")}):
        service = RoutingService(settings)
    try:
        assert service.decide(query("mbpp", 3))["llm"]
        encoder = service.champion.router.encoder_
        assert encoder.backend != "torch"  # the default config serves through ONNX Runtime
        assert encoder.threads == threads
        # 0 is ONNX Runtime's "one per core"
        assert encoder.onnx.session.get_session_options().intra_op_num_threads == onnx_threads
    finally:
        service.stop()


@pytest.mark.parametrize(("threads", "onnx_threads"), [(1, 1), (0, 0)])
def test_the_registry_loads_the_encoder_on_the_served_threads(
    mlflow_uri: str, router_dir: Path, threads: int, onnx_threads: int
) -> None:
    """The session the champion serves on is the one built at load (tag prototypes are
    embedded there), not rebuilt afterwards from the training setting's session."""
    from mixllm.serving.champion import RegistrySource

    version = register_router(router_dir)
    router = RegistrySource(encoder_threads=threads).load(version)
    encoder = router.encoder_
    built = encoder._onnx
    assert built is not None  # loading embedded the tag prototypes
    assert built.session.get_session_options().intra_op_num_threads == onnx_threads
    encoder.use_threads(threads or None)  # what the service does next: nothing to rebuild
    assert encoder._onnx is built


def test_a_version_logged_before_the_model_config_loads_quietly_and_serves_on_the_setting(
    mlflow_uri: str, router_dir: Path, service_env: dict[str, str], tmp_path: Path
) -> None:
    """Older versions carry no ``encoder_threads`` in their model config: they load as
    trained, without MLflow's "ignored, re-log the model" warning, and the service then puts
    their encoder on its own thread setting."""
    import logging

    from mixllm.serving.champion import RegistrySource

    version = register_router(router_dir, legacy=True)
    warnings: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())  # type: ignore[method-assign]
    mlflow_log = logging.getLogger("mlflow")  # MLflow's loggers stop propagating here
    mlflow_log.addHandler(handler)
    try:
        router = RegistrySource(encoder_threads=1).load(version)
    finally:
        mlflow_log.removeHandler(handler)
    assert not [w for w in warnings if "were ignored" in w], warnings
    assert router.encoder_.threads is None  # as trained: ONNX Runtime's default
    settings = ServiceSettings(poll_s=0, retrain_threshold=0, encoder_threads=1)
    with patched_env({"MIXLLM_HOME": str(tmp_path / "home")}):
        service = RoutingService(settings)
    try:
        assert service.champion.version == version and service.decide(query("mbpp", 4))["llm"]
        session = service.champion.router.encoder_.onnx.session
        assert session.get_session_options().intra_op_num_threads == 1
    finally:
        service.stop()


@pytest.mark.parametrize(("raw", "expected"), [(None, 1), ("", 1), ("0", None), ("1", 1), ("3", 3)])
def test_encoder_threads_from_the_environment(raw, expected) -> None:
    values, unset = (
        ({}, ["MIXLLM_ENCODER_THREADS"]) if raw is None else ({"MIXLLM_ENCODER_THREADS": raw}, [])
    )
    with patched_env(values, unset):
        assert ServiceSettings.from_env().encoder_threads == expected


@pytest.mark.parametrize("raw", ["-1", "two", "1.5", "1_0", "100000", "nan"])
def test_serve_refuses_bad_encoder_threads_in_one_line(capsys, raw) -> None:
    import typer

    from flows.service_cli import check_settings

    with patched_env({"MIXLLM_ENCODER_THREADS": raw}):
        with pytest.raises(ConfigError, match="MIXLLM_ENCODER_THREADS"):
            ServiceSettings.from_env()
        with pytest.raises(typer.Exit) as exit_:
            check_settings()
    assert exit_.value.exit_code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: MIXLLM_ENCODER_THREADS") and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("MIXLLM_WORKERS", "two"),
        ("MIXLLM_WORKERS", "0"),
        ("MIXLLM_BATCH_MAX", "-3"),
        ("MIXLLM_BATCH_MAX", "1.5"),
        ("MIXLLM_CHAMPION_POLL_S", "nan"),
        ("MIXLLM_EMBED_CACHE_SIZE", "-5"),
        ("MIXLLM_MAX_QUERY_CHARS", "abc"),
    ],
)
def test_serve_refuses_any_bad_numeric_setting_in_one_line(capsys, name, raw) -> None:
    """Each used to crash every worker with a traceback or fall back to its default."""
    import typer

    from flows.service_cli import check_settings

    with patched_env({name: raw}), pytest.raises(typer.Exit) as exit_:
        check_settings()
    assert exit_.value.exit_code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {name} must be") and err.count("\n") == 1, err
