"""Service-time models, queue waits, the latency penalty and the stream simulation."""

import numpy as np

from mixllm.core.config import LatencyConfig
from mixllm.routing.latency import (
    QueueState,
    expected_wait,
    fit_service_time,
    latency_penalty,
    poisson_arrivals,
    simulate_stream,
)


def test_fit_service_time_recovers_a_linear_law():
    prompt = np.arange(1, 101, dtype=float)
    out = np.tile([10.0, 50.0], 50)
    lat = 0.3 + 0.001 * prompt + 0.02 * out
    st = fit_service_time(lat, prompt, out)
    assert abs(st.ttft_s - 0.3) < 1e-6 and abs(st.s_per_output_token - 0.02) < 1e-6
    assert st.measured


def test_no_wait_while_slots_are_free():
    assert expected_wait(QueueState(in_flight=1, concurrency=2), 4.0) == 0.0
    assert expected_wait(None, 4.0) == 0.0


def test_wait_grows_with_the_queue():
    short = expected_wait(QueueState(in_flight=2, concurrency=2), 4.0)
    long = expected_wait(QueueState(in_flight=10, concurrency=2), 4.0)
    assert 0 < short < long


def test_penalty_only_past_the_limit_and_only_when_enabled():
    cfg = LatencyConfig(max_latency_s=5.0, penalty=0.5)
    np.testing.assert_allclose(latency_penalty(np.array([3.0, 7.0]), cfg), [0.0, 1.0])
    off = LatencyConfig(enabled=False)
    assert latency_penalty(np.array([100.0]), off)[0] == 0.0


def test_stream_queues_on_a_single_slot():
    arrivals = np.array([0.0, 0.0, 0.0])
    service = np.ones((3, 1)) * 2.0
    res = simulate_stream(arrivals, service, np.array([1]), lambda i, q: 0)
    np.testing.assert_allclose(sorted(res.latency_s), [2.0, 4.0, 6.0])
    assert res.over_limit(3.0) == 2 / 3


def test_stream_decider_sees_in_flight_counts():
    seen = []

    def decide(i, queues):
        seen.append(queues[0].in_flight)
        return 0

    simulate_stream(np.array([0.0, 0.1, 5.0]), np.ones((3, 1)), np.array([4]), decide)
    assert seen == [0, 1, 0]


def test_poisson_arrivals_have_the_requested_rate():
    t = poisson_arrivals(5000, rate_per_s=10.0, seed=1)
    assert np.all(np.diff(t) > 0)
    assert abs(len(t) / t[-1] - 10.0) < 0.5
