"""Where the project's stores live: one anchor, one environment variable per override.

Everything MixLLM writes by default hangs off the *project directory*:

| store | default | override |
|---|---|---|
| project directory | the current working directory | ``$MIXLLM_PROJECT_DIR`` |
| MLflow tracking store and artifacts | ``<project>/mlruns/`` | ``$MLFLOW_TRACKING_URI`` |
| built bentos | ``<project>/bentos/`` | ``$BENTOML_HOME`` |
| runtime state (caches, feedback DB) | ``<project>/.mixllm/`` | ``$MIXLLM_HOME`` |
| Prefect home (embedded mode) | ``<project>/.prefect/`` | ``$PREFECT_HOME`` |
| default training data | ``<project>/../shared/data/routerbench`` | ``$MIXLLM_DATA`` |

The package's own location is never used: in a wheel install it is site-packages.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ENV = "MIXLLM_PROJECT_DIR"
HOME_ENV = "MIXLLM_HOME"
DATA_ENV = "MIXLLM_DATA"


def project_dir() -> Path:
    """The project directory: ``$MIXLLM_PROJECT_DIR``, else the current working directory."""
    env = os.environ.get(PROJECT_ENV)
    return Path(env).expanduser().resolve() if env else Path.cwd()


def mixllm_home() -> Path:
    """Runtime state (caches, feedback DB): ``$MIXLLM_HOME``, else ``<project>/.mixllm``."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else project_dir() / ".mixllm"


def mlruns_dir() -> Path:
    """The embedded MLflow store's directory: ``<project>/mlruns``."""
    return project_dir() / "mlruns"


def default_data_path() -> Path:
    """Default training data: ``$MIXLLM_DATA``, else ``<project>/../shared/data/routerbench``."""
    env = os.environ.get(DATA_ENV)
    return (
        Path(env).expanduser() if env else project_dir().parent / "shared" / "data" / "routerbench"
    )
