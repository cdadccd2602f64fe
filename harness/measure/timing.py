"""The timing loop: first inference, warm-up by count and time, then timed iterations until both a
minimum count and a minimum duration are reached (the method of MLPerf's and LiteRT's tools)."""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field

from ..protocol import TimingPolicy


@dataclass
class Measurement:
    first_ns: int
    warmup_ns: list[int] = field(default_factory=list)
    samples_ns: list[int] = field(default_factory=list)


def measure(infer, policy: TimingPolicy, clock=time.perf_counter_ns) -> Measurement:
    """Time `infer()` (one inference on inputs already placed) under `policy`; every sample is kept.

    An `infer()` that returns an int reports its own device-measured nanoseconds (CUDA events),
    which are kept instead of the host clock's reading.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside a timed call would be charged to the runtime
    try:
        start = clock()
        device_ns = infer()
        result = Measurement(first_ns=device_ns if device_ns is not None else clock() - start)
        result.warmup_ns = _loop(infer, policy.warmup_iterations, policy.warmup_seconds, policy.max_seconds, clock)
        result.samples_ns = _loop(infer, policy.min_iterations, policy.min_seconds, policy.max_seconds, clock,
                                  policy.max_iterations)
        return result
    finally:
        if gc_was_enabled:
            gc.enable()


def _loop(infer, min_iterations: int, min_seconds: float, max_seconds: float, clock,
          max_iterations: int | None = None) -> list[int]:
    samples: list[int] = []
    began = clock()
    min_ns, max_ns = int(min_seconds * 1e9), int(max_seconds * 1e9)
    most = max_iterations if max_iterations is not None else float("inf")
    while True:
        elapsed = clock() - began
        if len(samples) >= min_iterations and (elapsed >= min_ns or elapsed >= max_ns or len(samples) >= most):
            return samples
        start = clock()
        device_ns = infer()
        samples.append(device_ns if device_ns is not None else clock() - start)
