"""Issue #9, lifecycle on real processes: SIGTERM to `mixllm serve` stops `bentoml serve` and
its workers within a bounded time, after the request in flight got its answer, and leaves no
process holding the port; `bentoml serve flows.service:MixLLMService` binds loopback by
default and refuses a public address without API keys."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import VENV_BIN, free_port, stop, wait_healthy

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.timeout(600)]

GRACE_S = 20.0


def _env(svc_root: Path, mlflow_uri: str, tiny_csv: Path, backends: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "MIXLLM_FEEDBACK_URL": f"sqlite:///{svc_root / 'serve-process' / 'feedback.db'}",
        "MIXLLM_STATE_URL": f"sqlite:///{svc_root / 'serve-process' / 'state.db'}",
        "MIXLLM_DATA": str(tiny_csv),
        "MIXLLM_BACKENDS": str(backends),
        "MIXLLM_CHAMPION_POLL_S": "0",
        "MIXLLM_RETRAIN_THRESHOLD": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # BentoML manages its own
    for key in ("MIXLLM_API_KEYS", "MIXLLM_API_KEYS_FILE", "BENTOML_HOST"):
        env.pop(key, None)
    return env


@pytest.fixture(scope="module")
def env(svc_root: Path, mlflow_uri: str, tiny_csv: Path, router_dir: Path, upstream) -> dict:
    from tests.service._registry import register_router

    register_router(router_dir)
    backends = svc_root / "serve-process" / "backends.yaml"
    backends.parent.mkdir(exist_ok=True)
    backends.write_text(
        "default_backend: replay\nbackends:\n  - {name: replay, kind: replay}\n"
        f"  - {{name: slow, kind: openai, base_url: '{upstream.url('slow')}', timeout_s: 30}}\n"
    )
    return _env(svc_root, mlflow_uri, tiny_csv, backends)


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _listen_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                found.add(addr)
    return found


def test_sigterm_drains_and_stops_everything(svc_root: Path, env: dict) -> None:
    port = free_port()
    log = svc_root / "serve-process" / "mixllm-serve.log"
    cmd = [str(VENV_BIN / "mixllm"), "serve", "--port", str(port), "--grace", str(GRACE_S)]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{base}/readyz", proc, 300, log)
        # Loopback only: 0100007F is 127.0.0.1 in /proc/net/tcp.
        assert _listen_addresses(port) == {"0100007F"}, _listen_addresses(port)
        spec = {"name": "acme/slow", "input_price": 1e-9, "output_price": 1e-9, "backend": "slow"}
        assert httpx.post(f"{base}/llms", json=spec, timeout=30).status_code == 200
        answers: list[httpx.Response | Exception] = []

        def in_flight() -> None:
            body = {
                "model": "mixllm",
                "candidates": ["acme/slow"],
                "messages": [{"role": "user", "content": "take your time"}],
            }
            try:
                answers.append(httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60))
            except Exception as exc:
                answers.append(exc)

        thread = threading.Thread(target=in_flight)
        thread.start()
        time.sleep(1.5)  # the upstream answers after 5 s: the request is in flight
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # to `mixllm serve` only, as systemd would
        code = proc.wait(timeout=GRACE_S + 20)
        stopped_s = time.monotonic() - t0
        thread.join(timeout=30)
        assert code == 0, log.read_text()[-3000:]
        assert stopped_s < GRACE_S + 10
        # The request in flight got its whole answer (the slow upstream's bad body: 502).
        assert len(answers) == 1 and isinstance(answers[0], httpx.Response), answers
        assert answers[0].status_code == 502 and "error" in answers[0].json()
        deadline = time.monotonic() + 10
        while not (_group_gone(proc.pid) and _port_free(port)):
            assert time.monotonic() < deadline, "a child of mixllm serve survived it"
            time.sleep(0.2)
    finally:
        stop(proc)
        if not _group_gone(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


def test_bentoml_serve_refuses_a_public_host_without_keys(env: dict) -> None:
    port = free_port()
    cmd = [
        str(VENV_BIN / "bentoml"),
        "serve",
        "flows.service:MixLLMService",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
    ]
    result = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=120, cwd=Path.cwd()
    )
    assert result.returncode != 0
    assert "without API keys" in result.stdout + result.stderr
    assert _port_free(port)


def test_sigterm_stops_the_mlflow_ui_and_its_workers(svc_root: Path, env: dict) -> None:
    port = free_port()
    log = svc_root / "serve-process" / "mlflow-ui.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "mixllm"), "ui", "--port", str(port)],
            env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", proc, 120, log)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
        deadline = time.monotonic() + 10
        while not (_group_gone(proc.pid) and _port_free(port)):
            assert time.monotonic() < deadline, "a child of mixllm ui survived it"
            time.sleep(0.2)
        assert time.monotonic() - t0 < 60
    finally:
        stop(proc)
        if not _group_gone(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


def test_bentoml_serve_on_a_public_host_with_keys_enforces_them(svc_root: Path, env: dict) -> None:
    from tests.servers import running

    port = free_port()
    token = "route-key-" + "x" * 24
    cmd = [
        str(VENV_BIN / "bentoml"),
        "serve",
        "flows.service:MixLLMService",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
    ]
    keyed = {**env, "MIXLLM_API_KEYS": f"route:{token}"}
    log = svc_root / "serve-process" / "bentoml-keyed.log"
    with running(cmd, env=keyed, log=log, health_url=f"http://127.0.0.1:{port}/readyz"):
        assert _listen_addresses(port) == {"00000000"}  # 0.0.0.0, as asked
        body = {"query": "Write a python function to reverse a string."}
        url = f"http://127.0.0.1:{port}/route"
        resp = httpx.post(url, json=body, timeout=30)
        assert resp.status_code == 401 and resp.json()["error"]["type"] == "authentication_error"
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.post(url, json=body, headers=auth, timeout=30).status_code == 200
    assert token not in log.read_text()
    assert _port_free(port)
