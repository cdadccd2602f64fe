"""The timing loop against a fake clock: what is kept, when warm-up and timing stop, gc off inside."""
from __future__ import annotations

import gc

import pytest

from harness.measure.timing import measure
from harness.protocol import TimingPolicy

MS = 1_000_000


class FakeClock:
    """A clock that only moves when an inference runs: each takes `latency_ms` (a list is consumed in turn)."""

    def __init__(self, latencies_ms):
        self.now = 0
        self.latencies = list(latencies_ms)
        self.calls = 0

    def __call__(self) -> int:
        return self.now

    def infer(self) -> None:
        self.calls += 1
        self.now += int((self.latencies.pop(0) if len(self.latencies) > 1 else self.latencies[0]) * MS)


def test_first_warmup_and_timed_samples_are_kept_apart():
    clock = FakeClock([50.0, 7.0, 7.0, 5.0])  # a slow first call, a short warm-up, then 5 ms steady
    policy = TimingPolicy(warmup_iterations=2, warmup_seconds=0, min_iterations=4, min_seconds=0)
    result = measure(clock.infer, policy, clock=clock)
    assert result.first_ns == 50 * MS
    assert result.warmup_ns == [7 * MS, 7 * MS]
    assert result.samples_ns == [5 * MS] * 4
    assert clock.calls == 1 + 2 + 4


@pytest.mark.parametrize("min_iterations, min_seconds, expected", [
    (10, 0.0, 10),  # count reached first
    (10, 0.2, 20),  # 200 ms at 10 ms each: time reached last
    (1, 0.05, 5),
])
def test_timing_stops_when_both_count_and_time_are_reached(min_iterations, min_seconds, expected):
    clock = FakeClock([10.0])
    policy = TimingPolicy(warmup_iterations=0, warmup_seconds=0, min_iterations=min_iterations,
                          min_seconds=min_seconds)
    assert len(measure(clock.infer, policy, clock=clock).samples_ns) == expected


def test_warmup_runs_for_its_minimum_time_too():
    clock = FakeClock([10.0])
    policy = TimingPolicy(warmup_iterations=1, warmup_seconds=0.1, min_iterations=1, min_seconds=0)
    assert len(measure(clock.infer, policy, clock=clock).warmup_ns) == 10


def test_max_seconds_caps_a_slow_target_but_never_below_the_minimum_count():
    clock = FakeClock([1000.0])  # one second per inference
    policy = TimingPolicy(warmup_iterations=0, warmup_seconds=0, min_iterations=5, min_seconds=3600,
                          max_seconds=2.0)
    assert len(measure(clock.infer, policy, clock=clock).samples_ns) == 5  # max reached at 2, count wins


@pytest.mark.parametrize("min_iterations, expected", [(100, 200), (300, 300)])
def test_max_iterations_stops_a_fast_call_before_its_minimum_time_but_never_below_the_minimum_count(
        min_iterations, expected):
    clock = FakeClock([0.01])  # 10 us per call: a second would be 100,000 samples
    policy = TimingPolicy(warmup_iterations=0, warmup_seconds=0, min_iterations=min_iterations, min_seconds=1.0,
                          max_iterations=200)
    assert len(measure(clock.infer, policy, clock=clock).samples_ns) == expected


def test_device_measured_nanoseconds_replace_the_host_clock():
    clock = FakeClock([10.0])

    def gpu_infer():
        clock.infer()
        return 3 * MS  # what CUDA events measured on the device

    policy = TimingPolicy(warmup_iterations=1, warmup_seconds=0, min_iterations=3, min_seconds=0)
    result = measure(gpu_infer, policy, clock=clock)
    assert result.first_ns == 3 * MS and result.samples_ns == [3 * MS] * 3


def test_garbage_collection_is_off_while_timing_and_restored():
    seen = []
    clock = FakeClock([1.0])

    def infer():
        seen.append(gc.isenabled())
        clock.infer()

    assert gc.isenabled()
    measure(infer, TimingPolicy(1, 0, 3, 0), clock=clock)
    assert seen and not any(seen) and gc.isenabled()

    def broken():
        raise RuntimeError("runtime failed")

    with pytest.raises(RuntimeError):
        measure(broken, TimingPolicy(), clock=clock)
    assert gc.isenabled()  # restored on failure too
