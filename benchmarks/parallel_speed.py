"""Do this machine's other cores come and go? One ONNX Runtime session's median latency per second, at one
thread and at all of them, the same input throughout.

    python benchmarks/parallel_speed.py --onnx model.onnx --resolution 128 --seconds 30

Found on this project's 2-vCPU VMs (README, Trusting a number): two threads run at 1.0x or 1.7x one thread's
speed in stretches of seconds, while steal reads 0; one thread is steady. Pinning the two threads to the two
vCPUs does not help; threads that never wait for each other (numpy ufuncs in Python threads) kept 1.6-2.4x
throughout, so it is the runtime's parallel loops, which wait for their slowest thread, that lose. Nothing
else should run meanwhile.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
    parser.add_argument("--onnx", type=Path, required=True,
                        help="an exported model (e.g. `harness export --backend onnxruntime`)")
    parser.add_argument("--resolution", type=int, default=256)
    args = parser.parse_args()
    threads = usable_cores()
    for n in (1, threads):
        trace = session_trace(args.onnx, args.resolution, n, args.seconds)
        print(f"{args.onnx.name} with {n} thread(s), median ms per second: {min(trace):.2f}-{max(trace):.2f} "
              f"(max / min {max(trace) / min(trace):.2f})")
        print("  " + " ".join(f"{m:.1f}" for m in trace))

if __name__ == "__main__":
    main()
