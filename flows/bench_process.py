"""The served process of `mixllm benchmark-service`: a free port, `mixllm serve` started in a
process group of its own with a fresh MIXLLM_HOME, readiness polling, and the stop of the
whole group (``flows.processes.stop_group``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from flows.processes import stop_group
from mixllm.core.paths import project_dir as project_root


def _mixllm() -> list[str]:
    """The `mixllm` console script next to this Python (the project's venv)."""
    script = Path(sys.executable).with_name("mixllm")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from flows.cli import app; app()"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True if something already accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def service_env(home: Path) -> dict[str, str]:
    """The served process's environment: a fresh MIXLLM_HOME (cold embedding cache, own
    feedback database) and no retraining trigger, so the run leaves the real stores alone."""
    env = dict(os.environ)
    env.update(
        MIXLLM_HOME=str(home),
        MIXLLM_FEEDBACK_URL=f"sqlite:///{home / 'feedback.db'}",
        MIXLLM_RETRAIN_THRESHOLD="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_service(port: int, env: dict[str, str], log: Path, data: str | None) -> subprocess.Popen:
    """`mixllm serve --port PORT` in its own process group, output to ``log``."""
    cmd = [*_mixllm(), "serve", "--port", str(port)]
    if data:
        cmd += ["--data", data]
    with open(log, "wb") as fh:
        return subprocess.Popen(
            cmd,
            cwd=project_root(),
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _tail(log: Path, n: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


def wait_ready(base: str, proc: subprocess.Popen, log: Path, timeout_s: float) -> dict[str, Any]:
    """Poll GET /healthz until it names a router version; RuntimeError if the server dies."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"`mixllm serve` exited ({proc.returncode}):\n{_tail(log)}")
        try:
            resp = httpx.get(f"{base}/healthz", timeout=5, trust_env=False)
            body = resp.json() if resp.status_code == 200 else {}
            if body.get("router_version"):
                return body
            last = f"HTTP {resp.status_code}: {resp.text[:200]}"
        except (httpx.HTTPError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(1)
    raise RuntimeError(f"{base}/healthz not ready after {timeout_s:.0f} s ({last}):\n{_tail(log)}")


def stop_service(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """Stop the server's process group (its id is the PID we started); SIGKILL after ``grace_s``."""
    stop_group(proc, grace_s)
