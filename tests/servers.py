"""Real server processes for the tests: free ports, start, wait until healthy, stop by PID.

Every server is started in a session of its own (``start_new_session=True``) and stopped
through its process group, by its PID, at the end of the fixture that started it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float, log: Path) -> None:
    """Poll ``url`` until it answers 200; fail with the server log if it dies or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not healthy after {timeout_s}s:\n{log.read_text()[-4000:]}")


def stop(proc: subprocess.Popen, grace_s: float = 30) -> None:
    """Stop a server started with start_new_session=True: its process group, by its PID."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def running(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str],
    log: Path,
    health_url: str,
    timeout_s: float = 120,
    grace_s: float = 30,
) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` (output to ``log``) until the block ends, once ``health_url`` answers 200;
    then SIGTERM, and SIGKILL after ``grace_s``."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            list(cmd), env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_healthy(health_url, proc, timeout_s, log)
        yield proc
    finally:
        stop(proc, grace_s)


@contextmanager
def prefect_server(home: Path, log: Path, env: Mapping[str, str]) -> Iterator[str]:
    """A real `prefect server start` on a free port (state under ``home``); its API URL."""
    port = free_port()
    cmd = [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server_env = {**env, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "false"}
    with running(cmd, env=server_env, log=log, health_url=f"http://127.0.0.1:{port}/api/health"):
        yield f"http://127.0.0.1:{port}/api"


@contextmanager
def mlflow_server(
    backend_uri: str, artifacts: Path, log: Path, env: Mapping[str, str]
) -> Iterator[str]:
    """A real `mlflow server` on a free port over ``backend_uri`` (tracking + registry),
    proxying artifacts to ``artifacts`` (clients never see that directory); its URL."""
    port = free_port()
    cmd = [
        str(VENV_BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        backend_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        str(artifacts),
    ]
    # No job-execution workers (they would add ~8 processes); no telemetry.
    server_env = {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server_env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    url = f"http://127.0.0.1:{port}"
    with running(cmd, env=server_env, log=log, health_url=f"{url}/health", timeout_s=180):
        yield url
