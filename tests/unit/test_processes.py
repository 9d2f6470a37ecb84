"""Stopping a child server stops every process it started, even one in its own session
that ignores SIGTERM (how a BentoML worker escaped ``mixllm serve``'s shutdown)."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from flows.processes import stop_group

pytestmark = pytest.mark.timeout(60)

PARENT = """
import subprocess, sys, time
worker = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
)
child = subprocess.Popen([sys.executable, "-c", worker], start_new_session=True)
print(child.pid, flush=True)
time.sleep(120)
"""


def test_stop_group_reaches_a_worker_in_its_own_session() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    worker = psutil.Process(int(proc.stdout.readline()))
    time.sleep(0.5)  # the worker has installed its SIGTERM handler
    stop_group(proc, grace_s=2.0)
    try:
        worker.wait(timeout=10)
    except psutil.TimeoutExpired:
        worker.kill()
        pytest.fail("the worker in its own session survived stop_group")
