"""Do this machine's other cores come and go? Per second, all threads' work against one thread's (the probe
`harness doctor --parallel` runs), and, with --onnx, one ONNX Runtime session's median latency per second at one
thread and at all of them, the same input throughout.

    python benchmarks/parallel_speed.py --seconds 30 [--onnx model.onnx --resolution 128]

Found on this project's 2-vCPU VMs (README, Trusting a number): two threads run at 1.0x or 1.7x one thread's
speed in stretches of seconds, while steal reads 0; one thread is steady. Nothing else should run meanwhile.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.measure.doctor import PARALLEL_SLICE_S, parallel_speed  # noqa: E402
from harness.measure.environment import usable_cores  # noqa: E402


def session_trace(path: Path, resolution: int, threads: int, seconds: float) -> list[float]:
    """Median milliseconds of each second of back-to-back inferences of one session."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random((1, 3, resolution, resolution),
                                                                          dtype=np.float32)}
    for _ in range(10):
        session.run(None, feed)
    medians = []
    for _ in range(int(seconds)):
        samples, end = [], time.perf_counter() + 1.0
        while time.perf_counter() < end:
            began = time.perf_counter()
            session.run(None, feed)
            samples.append((time.perf_counter() - began) * 1e3)
        medians.append(statistics.median(samples))
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--onnx", type=Path, help="an exported model (e.g. `harness export --backend onnxruntime`)")
    parser.add_argument("--resolution", type=int, default=256)
    args = parser.parse_args()
    threads = usable_cores()
    speeds = parallel_speed(args.seconds, threads)
    print(f"{threads} threads against one, {len(speeds)} slices of {PARALLEL_SLICE_S:g} s: "
          f"{min(speeds):.2f}x-{max(speeds):.2f}x (median {statistics.median(speeds):.2f}x)")
    print("  " + " ".join(f"{s:.2f}" for s in speeds))
    if args.onnx:
        for n in (1, threads):
            trace = session_trace(args.onnx, args.resolution, n, args.seconds)
            print(f"{args.onnx.name} with {n} thread(s), median ms per second: {min(trace):.2f}-{max(trace):.2f} "
                  f"(max / min {max(trace) / min(trace):.2f})")
            print("  " + " ".join(f"{m:.1f}" for m in trace))


if __name__ == "__main__":
    main()
