"""Latency side of routing: per-LLM service-time models, queue state and a stream simulation."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from mixllm.core.config import LatencyConfig


@dataclass
class QueueState:
    """What the router knows about one LLM's queue when it decides."""

    in_flight: int = 0
    concurrency: int = 1


@dataclass
class ServiceTime:
    """Service time: ttft_s + prompt tokens x s/prompt token + output tokens x s/output token."""

    ttft_s: float
    s_per_prompt_token: float
    s_per_output_token: float
    measured: bool = False  # fitted on recorded latencies rather than taken from the spec

    def predict(self, prompt_tokens: np.ndarray, output_tokens: np.ndarray) -> np.ndarray:
        """Service time in seconds."""
        return (
            self.ttft_s
            + np.asarray(prompt_tokens) * self.s_per_prompt_token
            + np.asarray(output_tokens) * self.s_per_output_token
        )


def fit_service_time(
    latency_s: np.ndarray, prompt_tokens: np.ndarray, output_tokens: np.ndarray
) -> ServiceTime:
    """Non-negative least squares fit of recorded latencies on (1, prompt, output tokens)."""
    ok = ~(np.isnan(latency_s) | np.isnan(output_tokens))
    A = np.column_stack([np.ones(ok.sum()), prompt_tokens[ok], output_tokens[ok]])
    coef, _ = nnls(A, latency_s[ok])
    return ServiceTime(float(coef[0]), float(coef[1]), float(coef[2]), measured=True)


def expected_wait(queue: QueueState | None, mean_service_s: float) -> float:
    """Seconds a new query would wait for a free slot (FIFO, ``concurrency`` servers)."""
    if queue is None or queue.in_flight < queue.concurrency:
        return 0.0
    return (queue.in_flight - queue.concurrency + 1) * mean_service_s / queue.concurrency


def queue_waits(
    queue: dict[str, QueueState] | None, service: np.ndarray, llms: Sequence[str]
) -> np.ndarray:
    """(1, k) seconds each LLM's queue would make a new query wait (``service``: (n, k) s)."""
    if not queue:
        return np.zeros((1, service.shape[1]))
    mean_service = service.mean(axis=0)
    return np.array(
        [expected_wait(queue.get(m), float(mean_service[j])) for j, m in enumerate(llms)]
    )[None, :]


def latency_penalty(total_latency_s: np.ndarray, config: LatencyConfig) -> np.ndarray:
    """Quality points taken off for each second a choice would exceed the time constraint."""
    if not config.enabled:
        return np.zeros_like(total_latency_s)
    return config.penalty * np.maximum(0.0, total_latency_s - config.max_latency_s)


@dataclass
class StreamResult:
    """Outcome of routing a stream of queries through finite-capacity LLMs."""

    choices: np.ndarray
    latency_s: np.ndarray  # waiting + service
    wait_s: np.ndarray

    def over_limit(self, max_latency_s: float) -> float:
        """Fraction of queries that took longer than ``max_latency_s``."""
        return float(np.mean(self.latency_s > max_latency_s))


def simulate_stream(
    arrivals_s: np.ndarray,
    service_s: np.ndarray,
    concurrency: np.ndarray,
    decide: Callable[[int, list[QueueState]], int],
) -> StreamResult:
    """Route queries in arrival order; each LLM serves FIFO with ``concurrency[k]`` slots.

    ``service_s`` (n, k) is the real service time of query i on LLM k; ``decide(i, queues)``
    sees only the queue states (in-flight counts), as a live router would.
    """
    n, k = service_s.shape
    slots = [[0.0] * int(concurrency[j]) for j in range(k)]  # min-heaps of slot free times
    finishing: list[list[float]] = [[] for _ in range(k)]  # min-heaps of finish times
    choices = np.empty(n, dtype=int)
    latency = np.empty(n)
    wait = np.empty(n)
    for i in np.argsort(arrivals_s, kind="stable"):
        t = float(arrivals_s[i])
        for heap in finishing:
            while heap and heap[0] <= t:
                heapq.heappop(heap)
        queues = [QueueState(len(finishing[j]), int(concurrency[j])) for j in range(k)]
        j = decide(int(i), queues)
        start = max(t, heapq.heappop(slots[j]))
        end = start + float(service_s[i, j])
        heapq.heappush(slots[j], end)
        heapq.heappush(finishing[j], end)
        choices[i], wait[i], latency[i] = j, start - t, end - t
    return StreamResult(choices, latency, wait)


def poisson_arrivals(n: int, rate_per_s: float, seed: int = 0) -> np.ndarray:
    """Arrival times of a Poisson stream of ``n`` queries at ``rate_per_s``."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.exponential(1.0 / rate_per_s, size=n))
