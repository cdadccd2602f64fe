"""How long `harness layers` takes and how much memory it holds, and whether its kept worker measures each
layer where one fresh process per layer did.

1. Speed: `harness layers --device cpu --model MODEL` with each chosen backend, run as a user runs it,
   first with an empty artifact cache (cold: every layer exported), then again (warm). Reports wall
   time and the peak memory of the whole process tree (the command, its workers and what they fork,
   sampled every 0.2 s), as proportional set size: a page shared by several processes counts once
   in the sum. (Summed resident sizes would count a fork's shared pages again for each fork: OpenVINO's
   model conversion forks a process per call to send its telemetry.)
2. Fidelity: for a sample of layers on each target, R rounds that alternate the two ways of timing a
   layer: one fresh worker process per layer with the timing of a whole model as `harness layers` used
   it before (10 warm-up calls / 0.2 s, then at least 100 calls and 1 s), and one kept worker per target
   with harness.measure.layers.LAYER_POLICY. Per layer: the fresh processes' medians (their spread is
   how far a fresh process lands), the kept worker's median over its rounds, and whether it falls inside
   that spread.

    python benchmarks/layer_sweep.py --model t8 --rounds 3 --layers 8
Nothing else should run on the machine meanwhile (it times).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.measure.child import WorkerPerTarget, measure_in_child  # noqa: E402
from harness.measure.layers import LAYER_POLICY, OVERHEAD, distinct_layers  # noqa: E402
from harness.opclass import OVERHEAD_SIGNATURE  # noqa: E402
from harness.protocol import Job, TimingPolicy  # noqa: E402
from harness.spec import ModelSpec, Target  # noqa: E402

# what `harness layers` timed each layer with before it had a policy of its own
WHOLE_MODEL_POLICY = TimingPolicy(warmup_iterations=10, warmup_seconds=0.2, min_iterations=100, min_seconds=1.0)
DEFAULT_BACKENDS = ["onnxruntime", "openvino", "litert", "executorch"]


class TreeMemory:
    """The peak of the summed proportional memory (PSS; RSS where the OS gives no PSS) of a process and all
    its descendants, sampled."""

    def __init__(self, pid: int, every_s: float = 0.2):
        self.root, self.every_s, self.peak = psutil.Process(pid), every_s, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.done.wait(self.every_s):
            try:
                tree = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for proc in tree:
                try:
                    total += _proportional(proc)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            self.peak = max(self.peak, total)

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return self.peak


def _proportional(proc: psutil.Process) -> int:
    full = proc.memory_full_info()
    return getattr(full, "pss", full.rss)


def harness_layers(model: str, backends: list[str], db: Path, cache: Path) -> tuple[float, int]:
    """(wall seconds, peak tree memory in bytes) of one `harness layers` command."""
    command = [sys.executable, "-m", "harness.cli", "layers", "--device", "cpu", "--model", model,
               *[arg for b in backends for arg in ("--backend", b)], "--db", str(db), "--cache", str(cache)]
    began = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(proc.pid)
    _, stderr = proc.communicate()
    wall, peak = time.perf_counter() - began, memory.stop()
    if proc.returncode != 0:
        raise SystemExit(f"harness layers failed ({proc.returncode}):\n{stderr[-3000:]}")
    return wall, peak


def sample_layers(spec: ModelSpec, count: int) -> list[tuple[str, str]]:
    """(path, signature) of the empty-model probe and `count` layers spread over the model."""
    found = distinct_layers(spec)
    step = max(1, len(found) // count)
    return [(OVERHEAD, OVERHEAD_SIGNATURE)] + [(layer.path, layer.signature) for layer in found[::step][:count]]


def fidelity(spec: ModelSpec, backends: list[str], layers: list[tuple[str, str]], rounds: int, threads: int,
             cache: Path) -> None:
    for backend in backends:
        target = Target(backend, "cpu")

        def jobs(policy: TimingPolicy) -> list[Job]:
            return [Job(spec, target, threads, policy, str(cache.resolve()), layer=path, layer_signature=sig,
                        layer_count=1) for path, sig in layers]

        fresh: dict[str, list[float]] = {sig: [] for _, sig in layers}
        kept: dict[str, list[float]] = {sig: [] for _, sig in layers}
        fresh_seconds, kept_seconds = [], []
        for r in range(rounds):
            order = ("fresh", "kept") if r % 2 == 0 else ("kept", "fresh")
            for way in order:
                began = time.perf_counter()
                if way == "fresh":
                    results = [measure_in_child(job, timeout_s=900) for job in jobs(WHOLE_MODEL_POLICY)]
                else:
                    with WorkerPerTarget() as worker:
                        results = [worker(job, 900) for job in jobs(LAYER_POLICY)]
                (fresh_seconds if way == "fresh" else kept_seconds).append(time.perf_counter() - began)
                for (_, sig), result in zip(layers, results):
                    if result.status != "ok":
                        raise SystemExit(f"{way} {backend} {sig}: {result.status} {result.error}")
                    (fresh if way == "fresh" else kept)[sig].append(result.summary.median_ms)
        inside = 0
        print(f"\n{target.name}: {len(layers)} layers x {rounds} rounds; per round, fresh processes "
              f"{statistics.median(fresh_seconds):.1f} s, kept worker {statistics.median(kept_seconds):.1f} s")
        print(f"  {'layer':58} {'fresh: min-max of process medians (ms)':>40} {'kept (ms)':>10} {'kept/fresh':>10}")
        for _, sig in layers:
            low, high, ours = min(fresh[sig]), max(fresh[sig]), statistics.median(kept[sig])
            ok = low <= ours <= high
            inside += ok
            print(f"  {sig[:58]:58} {f'{low:.4f}-{high:.4f}':>40} {ours:>10.4f} "
                  f"{ours / statistics.median(fresh[sig]):>10.3f}{'' if ok else '  outside'}")
        print(f"  {inside} of {len(layers)} kept-worker medians inside the fresh processes' spread")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="t8")
    parser.add_argument("--backend", action="append", help=f"repeatable (default: {' '.join(DEFAULT_BACKENDS)})")
    parser.add_argument("--rounds", type=int, default=3, help="fidelity rounds (0: speed only)")
    parser.add_argument("--layers", type=int, default=8, help="layers per target in the fidelity part")
    parser.add_argument("--threads", type=int, default=psutil.cpu_count(logical=True))
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    backends = args.backend or DEFAULT_BACKENDS
    spec = ModelSpec(args.model)
    with tempfile.TemporaryDirectory(prefix="layer-sweep-") as tmp:
        cache = Path(tmp) / "cache"
        if not args.skip_speed:
            cold = harness_layers(args.model, backends, Path(tmp) / "cold.db", cache)
            warm = harness_layers(args.model, backends, Path(tmp) / "warm.db", cache)
            count = len(distinct_layers(spec)) + 1
            print(f"harness layers --model {args.model} on {', '.join(backends)} ({count} layers each, probe "
                  f"included):")
            for name, (wall, peak) in (("cold cache", cold), ("warm cache", warm)):
                print(f"  {name}: {wall / 60:.1f} min, peak memory of the process tree {peak / 2**30:.2f} GiB")
        if args.rounds:
            fidelity(spec, backends, sample_layers(spec, args.layers), args.rounds, args.threads, cache)


if __name__ == "__main__":
    main()
