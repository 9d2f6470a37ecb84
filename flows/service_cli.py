"""`mixllm serve` and `mixllm build`: run and package the BentoML routing service.

bentoml, prefect and mlflow are imported (or run as subprocesses) only inside the commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows.processes import DEFAULT_GRACE_S, run_foreground
from mixllm.core.paths import project_dir as project_root

SERVICE = "flows.service:MixLLMService"
BENTOFILE = Path(__file__).with_name("bentofile.yaml")


def service_defaults() -> dict[str, str]:
    """Quiet, project-local defaults for BentoML and the libraries the service loads."""
    root = project_root()
    defaults = {
        "BENTOML_HOME": str(root / "bentos"),
        "BENTOML_DO_NOT_TRACK": "true",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MIXLLM_HOME": str(root / ".mixllm"),
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    return defaults


def _bentoml() -> str:
    """The bentoml executable next to this Python (the project's venv)."""
    candidate = Path(sys.executable).with_name("bentoml")
    return str(candidate) if candidate.exists() else "bentoml"


def _champion_version() -> str | None:
    from mixllm.registry import stores as registry

    return registry.current_alias_version(registry.MODEL_NAME, registry.CHAMPION)


def ensure_champion(data: str | None, config: Path | None) -> str:
    """The champion's version, training and registering one first if the registry is empty."""
    from mixllm.core.errors import MixLLMError

    try:
        version = _champion_version()
    except MixLLMError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if version is not None:
        return version
    typer.echo("The registry has no champion router yet: running the training pipeline first.")
    from flows.training_cli import pipeline

    pipeline(data=data, budget_pct=None, config=config, seed=None, ablation=None)
    version = _champion_version()
    if version is None:
        typer.echo("error: the pipeline registered no champion; see its gate reason", err=True)
        raise typer.Exit(1)
    return version


def usage(port: int) -> str:
    """How to talk to the service once it is up."""
    base = f"http://127.0.0.1:{port}"
    return f"""
Service on {base} (OpenAPI docs at {base}/, health at {base}/healthz). Try:

  curl -s -X POST {base}/route -H 'content-type: application/json' \\
       -d '{{"query": "Write a python function to reverse a string.", "budget": 0.25}}'

  python - <<'PY'
  from openai import OpenAI
  client = OpenAI(base_url="{base}/v1", api_key="unused")
  r = client.chat.completions.create(model="mixllm:0.25",
        messages=[{{"role": "user", "content": "Write a python function to reverse a string."}}])
  print(r.model, "->", r.choices[0].message.content[:200])
  PY
"""


def check_host(host: str) -> None:
    """Exit 2 unless the service may listen on ``host`` (loopback, or API keys configured)."""
    from mixllm.core.errors import ConfigError
    from mixllm.serving.auth import ApiKeys, require_keys

    try:
        require_keys(host, ApiKeys.from_env())
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def check_settings() -> None:
    """Exit 2 with one line unless every numeric MIXLLM_* service setting (ServiceSettings,
    and MIXLLM_WORKERS) parses and is in range: a bad value would otherwise crash every
    BentoML worker with a traceback, or be silently replaced by its default."""
    from mixllm.core.errors import ConfigError
    from mixllm.serving.settings import ServiceSettings, env_number

    try:
        env_number("MIXLLM_WORKERS", 1, 1, 64, integer=True)
        ServiceSettings.from_env()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def check_state_store() -> None:
    """Exit 2 with one line unless ``$MIXLLM_STATE_URL`` names a state store that answers:
    a bad URL or password would otherwise crash-loop every BentoML worker with tracebacks."""
    from mixllm.core.errors import MixLLMError
    from mixllm.registry.messages import redact_url
    from mixllm.serving.shared_state import STATE_URL_ENV, open_docs

    url = os.environ.get(STATE_URL_ENV)
    if not url:
        return  # the default SQLite file under $MIXLLM_HOME
    try:
        docs = open_docs(url)
    except MixLLMError as exc:
        message = str(exc).replace(url, redact_url(url))
        typer.echo(f"error: {STATE_URL_ENV} {redact_url(url)}: {message}", err=True)
        raise typer.Exit(2) from None
    close = getattr(docs, "close", None)
    if close is not None:
        close()


def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    host: Annotated[
        str,
        typer.Option(help="Address to bind; anything but loopback needs $MIXLLM_API_KEYS."),
    ] = "127.0.0.1",
    grace: Annotated[
        float, typer.Option(help="Seconds to drain requests on SIGTERM before killing.")
    ] = DEFAULT_GRACE_S,
    data: Annotated[
        str | None, typer.Option(help="Training data, if a first router must be trained.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="MixLLM config YAML for that first training.")
    ] = None,
) -> None:
    """Start the routing service with the registry's champion; SIGTERM or Ctrl-C stops it and
    everything it started (see docs/SERVICE.md)."""
    check_host(host)  # before any training or server start
    service_defaults()
    from flows.training_cli import store_defaults

    store_defaults()
    check_settings()
    check_state_store()  # before training or starting bentoml
    version = ensure_champion(data, config)
    if data:
        os.environ.setdefault("MIXLLM_DATA", data)  # the replay backend answers from it
    typer.echo(f"Serving mixllm-router v{version} (@champion)." + usage(port))
    cmd = [_bentoml(), "serve", SERVICE, "--host", host, "--port", str(port)]
    raise typer.Exit(run_foreground(cmd, cwd=project_root(), grace_s=grace))


def build() -> None:
    """Build the service into a bento under <project>/bentos (offline: pinned requirements)."""
    service_defaults()
    root = project_root()
    cmd = [_bentoml(), "build", "-f", str(BENTOFILE), str(root)]
    typer.echo(f"BENTOML_HOME={os.environ['BENTOML_HOME']} {' '.join(cmd)}")
    code = subprocess.call(cmd, cwd=root)
    if code == 0:
        typer.echo(f"Bento stored under {os.environ['BENTOML_HOME']}/bentos/mixllm/")
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the service commands to the `mixllm` app."""
    app.command("serve")(serve)
    app.command("build")(build)
