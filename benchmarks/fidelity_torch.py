"""Does our timing agree with PyTorch's own benchmark utility? The same reparameterized model timed by
the harness (a child process, as in `harness run`) and by `torch.utils.benchmark.Timer` (in a fresh
process too, same threads), alternating, several rounds. Eager (`--backend torch`) or compiled
(`--backend torch-compile`: both sides compile the model the same way, channels-last, the device's
default mode), on the CPU or a CUDA GPU (`--device gpu`), in fp32 or half precision, at any batch.

Rounds alternate which side goes first. Both sides are summarised alike: Timer's blocked_autorange
reports the median of block means (blocks of `number_per_run` calls), so the harness's per-call
samples are grouped into blocks of the same size first. Prints each round's medians and the ratio
of the per-round medians (harness / Timer) with a bootstrap 95% interval over the rounds.
Goal: 0.97-1.03 on a quiet machine.

    python benchmarks/fidelity_torch.py --model t8 --rounds 8 --seconds 3
    python benchmarks/fidelity_torch.py --backend torch-compile --device gpu --precision fp16 --batch 8 --model s12
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.protocol import Job, TimingPolicy  # noqa: E402
from harness.spec import ModelSpec, Target  # noqa: E402
from fidelity import alternate, ratio_line  # noqa: E402

# The module exactly as the torch / torch-compile sessions hold it (backends/torch_eager.py, torch_compile.py).
TIMER = """
import json, sys, torch
from torch.utils.benchmark import Timer
sys.path.insert(0, {repo!r})
from backends.torch_compile import DEFAULT_MODE
from harness.spec import example_input
from harness.spec import ModelSpec
spec = ModelSpec({model!r}, {resolution}, {batch})
device = torch.device("cuda" if {device!r} == "gpu" else "cpu")
dtype = {{"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}}[{precision!r}]
torch.set_num_threads({threads})
torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
model, x = spec.build().to(device, dtype), example_input(spec).to(device, dtype)
step = lambda: None
if {compiled}:
    model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    mode = DEFAULT_MODE[{device!r}]
    model = torch.compile(model, backend="inductor", mode=mode)
    if device.type == "cuda" and mode != "default":
        step = torch.compiler.cudagraph_mark_step_begin
with torch.inference_mode():
    for _ in range(10):
        step()
        model(x)
    measured = Timer("step(); model(x)", globals={{"model": model, "x": x, "step": step}},
                     num_threads={threads}).blocked_autorange(min_run_time={seconds})
print(json.dumps({{"median_ms": measured.median * 1e3, "runs": len(measured.times),
                  "number_per_run": measured.number_per_run}}))
"""


def timer_median(args) -> tuple[float, int, int]:
    """Timer's median (of block means: blocked_autorange times blocks of `number_per_run` calls), blocks, block size."""
    code = TIMER.format(repo=str(REPO), model=args.model, resolution=args.resolution, batch=args.batch,
                        device=args.device, precision=args.precision, threads=args.threads, seconds=args.seconds,
                        compiled=args.backend == "torch-compile")
    env = {**os.environ, **{v: str(args.threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                           "OPENBLAS_NUM_THREADS")}}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    found = json.loads(out.strip().splitlines()[-1])
    return found["median_ms"], found["runs"], found["number_per_run"]


def blocked_median_ms(samples_ns: list[int], block: int) -> float:
    """The harness's per-call samples summarised as Timer does: median of the means of `block` consecutive
    calls (a block mean is pulled up by a slow call that a per-call median ignores)."""
    means = [statistics.fmean(samples_ns[i:i + block]) for i in range(0, len(samples_ns) - block + 1, block)]
    return statistics.median(means) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="t8")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--backend", choices=("torch", "torch-compile"), default="torch")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()

    policy = TimingPolicy(warmup_iterations=10, warmup_seconds=1.0, min_iterations=50, min_seconds=args.seconds)
    job = Job(ModelSpec(args.model, args.resolution, args.batch), Target(args.backend, args.device), args.threads,
              policy, str((REPO / "artifacts").resolve()), args.precision, profile_iterations=0)
    ours, theirs = [], []
    for r, result, (timer_ms, timer_runs, block) in alternate(job, args.rounds, lambda _latest: timer_median(args)):
        ours.append(blocked_median_ms(result.samples_ns, block))
        theirs.append(timer_ms)
        print(f"round {r + 1}: harness {ours[-1]:.3f} ms (median of {block}-call means over "
              f"{len(result.samples_ns)} calls; per-call median {result.summary.median_ms:.3f}), "
              f"Timer {timer_ms:.3f} ms ({timer_runs} blocks of {block})", flush=True)
    print(ratio_line(f"{args.model} {args.resolution}px batch {args.batch} {args.precision} on "
                     f"{args.backend}/{args.device}, {args.threads} threads, {args.rounds} rounds: harness / Timer",
                     ours, theirs) + f"; medians {statistics.median(ours):.3f} / {statistics.median(theirs):.3f} ms")


if __name__ == "__main__":
    main()
