"""The `mixllm` console script: library commands plus the pipeline and service commands.

The library's own commands live in `mixllm.tools.cli` (no prefect/bentoml there); the orchestration
layers add theirs here, importing prefect, mlflow and bentoml only when a command runs.
"""

from __future__ import annotations

from flows import bench_cli, service_cli, training_cli
from mixllm.tools.cli import app

training_cli.register(app)
service_cli.register(app)
bench_cli.register(app)

__all__ = ["app"]

if __name__ == "__main__":  # `python -m flows.cli ...`, same as the `mixllm` script
    app()
