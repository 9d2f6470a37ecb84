"""Long-lived child servers of the CLI (bentoml serve, mlflow ui) that stop with the CLI.

``subprocess.call`` leaves a child running when the CLI gets SIGTERM (systemd, a container
runtime and ``kill`` send that, not Ctrl-C): the CLI exits alone and the server and its
workers keep the port. ``run_foreground`` starts the child in its own process group,
forwards SIGTERM/SIGINT/SIGHUP to that whole group, waits ``grace_s`` for it to drain and
exit, then kills whatever of the group is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import psutil

DEFAULT_GRACE_S = 30.0  # BentoML drains in-flight requests within its graceful timeout
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def stop_group(proc: subprocess.Popen, grace_s: float, sig: int = signal.SIGTERM) -> int:
    """Send ``sig`` to the child's process group, wait up to ``grace_s`` for the whole group
    to exit, SIGKILL what is left; the child's exit code.

    BentoML starts its workers in sessions of their own, out of the group's reach, and a
    worker orphaned by its parent's exit is no longer anyone's child: so every descendant
    is listed before the signal, and those still alive at the deadline are killed too.
    """
    pgid = proc.pid
    family = _descendants(proc.pid)
    _signal_group(pgid, sig)
    for child in family:
        with contextlib.suppress(psutil.Error):
            child.send_signal(sig)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        alive = [c for c in family if c.is_running()]
        if proc.poll() is not None and not _group_alive(pgid) and not alive:
            break
        time.sleep(0.1)
    else:
        _signal_group(pgid, signal.SIGKILL)
        for child in family:
            with contextlib.suppress(psutil.Error):
                child.kill()
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return -signal.SIGKILL


def run_foreground(
    cmd: Sequence[str], *, cwd: str | Path | None = None, grace_s: float = DEFAULT_GRACE_S
) -> int:
    """Run a server until it exits or this process gets SIGTERM/SIGINT/SIGHUP; then stop
    the server's whole process group within ``grace_s`` (+ a kill). The exit code:
    the server's own, or 0 when it was stopped by a signal."""
    proc = subprocess.Popen(list(cmd), cwd=cwd, start_new_session=True)
    received: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, forward) for sig in _FORWARDED}
    try:
        while proc.poll() is None and not received:
            time.sleep(0.2)
        if received:
            # SIGINT as SIGTERM too: the group did not get the terminal's Ctrl-C.
            stop_group(proc, grace_s)
            return 0
        stop_group(proc, 5.0)  # the server exited alone: no worker may outlive it
        return proc.returncode
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
