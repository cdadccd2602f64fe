"""Does our timing agree with the vendor's tool? The same OpenVINO IR timed by our harness (child
process, as in `harness run`) and by OpenVINO's `benchmark_app`, alternating, several rounds.

Rounds alternate which side goes first. Prints each round's medians and the ratio of the per-round medians (ours / theirs) with a bootstrap
95% interval over the rounds. Goal: 0.97-1.03 on a quiet machine.

    python benchmarks/fidelity_openvino.py --model t8 --rounds 8 --seconds 5
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backends.benchmark_app import parse_benchmark_app  # noqa: E402
from harness.protocol import Job, TimingPolicy  # noqa: E402
from harness.spec import ModelSpec, Target  # noqa: E402
from fidelity import alternate, ratio_line  # noqa: E402

def benchmark_app_command(xml: Path, threads: int, seconds: float) -> list[str]:
    """benchmark_app in the configuration our harness uses: sync API, one stream (hint "none": benchmark_app refuses -nthreads beside a hint),
    f32, the same thread count, static shape as stored in the IR."""
    tool = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    return [tool, "-m", str(xml), "-d", "CPU", "-api", "sync", "-hint", "none", "-nstreams", "1",
            "-nthreads", str(threads), "-infer_precision", "f32", "-t", str(max(1, round(seconds)))]


def benchmark_app_median(xml: Path, threads: int, seconds: float) -> float:
    proc = subprocess.run(benchmark_app_command(xml, threads, seconds), capture_output=True, text=True, check=True)
    return parse_benchmark_app(proc.stdout).median_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="t8")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--cache", type=Path, default=REPO / "artifacts")
    args = parser.parse_args()

    policy = TimingPolicy(warmup_iterations=10, warmup_seconds=1.0, min_iterations=50, min_seconds=args.seconds)
    job = Job(ModelSpec(args.model, args.resolution), Target("openvino", "cpu"), args.threads, policy,
              str(args.cache.resolve()))
    ours_medians, theirs_medians = [], []
    def on_the_ir(latest):  # benchmark_app times the IR the harness's latest run exported
        return benchmark_app_median(Path(latest.artifact_path), args.threads, args.seconds)

    for r, result, theirs in alternate(job, args.rounds, on_the_ir):
        ours_medians.append(result.summary.median_ms)
        theirs_medians.append(theirs)
        print(f"round {r + 1}: harness {ours_medians[-1]:.3f} ms ({len(result.samples_ns)} iterations), "
              f"benchmark_app {theirs:.3f} ms", flush=True)
    print(ratio_line(f"{args.model} {args.resolution}px, {args.threads} threads, {args.rounds} rounds: harness / "
                     "benchmark_app", ours_medians, theirs_medians))

if __name__ == "__main__":
    main()
