"""What a full CPU sweep costs a user, before and after a change, and whether kept workers time what fresh
processes time.

1. Cost: `harness run --device cpu` for every FastViT variant on every CPU runtime, run as a user runs it
   from a checkout (--repo: this one, and e.g. a clean clone of the previous main for "before"), first
   with an empty artifact cache (cold: every artifact exported, torch.compile compiled cold), then again
   on the same cache (warm). Reports wall time and the peak memory of the whole process tree (summed
   proportional set size, sampled every 0.2 s; see layer_sweep.TreeMemory).
2. Fidelity: R rounds that alternate the two ways of running the same jobs (default timing policy):
   one fresh worker process per job (`harness run`'s default), and one kept worker per target running
   every model in turn (`harness run --kept-workers`). Per target and model: the fresh processes' medians (their min-max is the
   between-process spread), the kept worker's median over its rounds, kept/fresh and whether it falls
   inside that spread.

    python benchmarks/sweep_cost.py --repo /tmp/before --repo . --rounds 3
Nothing else should run on the machine meanwhile (it times).
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from layer_sweep import TreeMemory  # noqa: E402  (benchmarks/ is this script's own folder)

from fastvit import list_models  # noqa: E402
from harness.measure.child import WorkerPerTarget, measure_in_child  # noqa: E402
from harness.protocol import Job, TimingPolicy  # noqa: E402
from harness.spec import ModelSpec, Target  # noqa: E402

CPU_RUNTIMES = ["torch", "torch-compile", "onnxruntime", "openvino", "litert", "executorch"]
RUN_POLICY = TimingPolicy(warmup_iterations=10, warmup_seconds=1.0, min_iterations=50, min_seconds=3.0)  # harness run's


def harness_run(repo: Path, models: list[str], backends: list[str], db: Path, cache: Path) -> tuple[float, int, str]:
    """(wall seconds, peak tree memory in bytes, the summary line) of one `harness run` from checkout `repo`."""
    command = [sys.executable, "-m", "harness.cli", "run", "--device", "cpu",
               *[arg for m in models for arg in ("--model", m)], *[arg for b in backends for arg in ("--backend", b)],
               "--db", str(db), "--cache", str(cache), "--format", "csv"]
    began = time.perf_counter()
    proc = subprocess.Popen(command, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(proc.pid)
    stdout, stderr = proc.communicate()
    wall, peak = time.perf_counter() - began, memory.stop()
    statuses = [line.split(",") for line in stdout.splitlines()[1:]]
    if proc.returncode not in (0, 1) or not statuses:
        raise SystemExit(f"harness run in {repo} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return wall, peak, f"{len(statuses)} runs, exit {proc.returncode}"


def cost(repos: list[Path], models: list[str], backends: list[str], shared_cache: bool = False) -> None:
    """Each checkout cold (an empty cache) then warm; with `shared_cache` one cache for all: the first checkout's
    cold run fills it and every later checkout times its warm run only (same model code, same artifacts)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="sweep-cost-") as shared:
        for n, repo in enumerate(repos):
            with tempfile.TemporaryDirectory(prefix="sweep-cost-") as tmp:
                cache = Path(shared if shared_cache else tmp) / "cache"
                for name in ("cold", "warm") if not shared_cache or n == 0 else ("warm",):
                    wall, peak, said = harness_run(repo, models, backends, Path(tmp) / f"{name}.db", cache)
                    rows.append((str(repo), name, wall, peak, said))
                    print(f"  {repo} {name}: {wall / 60:.1f} min, peak {peak / 2**30:.2f} GiB ({said})", flush=True)
                    print(phase_breakdown(Path(tmp) / f"{name}.db", wall), flush=True)
    print(f"\nharness run --device cpu, {len(models)} variants x {len(backends)} runtimes:")
    print(f"  {'checkout':40} {'cache':6} {'wall':>9} {'peak GiB':>9}")
    for repo, name, wall, peak, _ in rows:
        print(f"  {repo[-40:]:40} {name:6} {f'{int(wall // 60)}:{wall % 60:04.1f}':>9} {peak / 2**30:>9.2f}")


def phase_breakdown(db: Path, wall: float) -> str:
    """Where the sweep's wall time went: each worker phase summed over its runs (environment "phases_s", from
    checkouts that record it), per runtime, and what the runs' own spans leave (the parent: start-up, planning,
    storing, worker start)."""
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT target, environment, julianday(finished_at) - julianday(started_at) FROM runs WHERE sweep_id IS NOT NULL")
        runs = [(target, (json.loads(env or "null") or {}).get("phases_s") or {}, (days or 0) * 86400)
                for target, env, days in rows]
    if not any(phases for _, phases, _ in runs):
        return "    (no phases recorded: a checkout before the worker recorded them)"
    names = sorted({n for _, phases, _ in runs for n in phases}, key=lambda n: -sum(p.get(n, 0) for _, p, _ in runs))
    targets = sorted({t for t, _, _ in runs})
    lines = [f"    {'phase (s)':12}" + "".join(f"{t.split('/')[0][:13]:>14}" for t in targets) + f"{'all':>9}"]
    for n in names:
        per = {t: sum(p.get(n, 0) for tt, p, _ in runs if tt == t) for t in targets}
        lines.append(f"    {n:12}" + "".join(f"{per[t]:>14.1f}" for t in targets) + f"{sum(per.values()):>9.1f}")
    spans = sum(span for _, _, span in runs)
    lines.append(f"    runs' spans {spans:.1f} s of {wall:.1f} s wall; outside the runs {wall - spans:.1f} s")
    return "\n".join(lines)


def fidelity(models: list[str], backends: list[str], rounds: int, threads: int, cache: Path) -> None:
    """Kept worker against fresh processes, interleaved; the cache is warm first (nothing exports while timed)."""
    jobs = [Job(ModelSpec(m), Target(b, "cpu"), threads, RUN_POLICY, str(cache.resolve())) for b in backends
            for m in models]
    fresh: dict[str, list[float]] = {j.describe(): [] for j in jobs}
    kept: dict[str, list[float]] = {j.describe(): [] for j in jobs}
    for job in jobs:  # exports and torch.compile's kept cold compile, outside what is compared
        measure_in_child(job, 1800)
    for r in range(rounds):
        for way in (("fresh", "kept") if r % 2 == 0 else ("kept", "fresh")):
            if way == "fresh":
                results = [measure_in_child(job, 1800) for job in jobs]
            else:
                with WorkerPerTarget() as worker:
                    results = [worker(job, 1800) for job in jobs]
            for job, result in zip(jobs, results):
                if result.status != "ok":
                    raise SystemExit(f"{way} {job.describe()}: {result.status} {result.error}")
                (fresh if way == "fresh" else kept)[job.describe()].append(result.summary.median_ms)
            print(f"  round {r + 1} {way} done", flush=True)
    inside, ratios = 0, []
    print(f"\nkept worker vs fresh processes, {rounds} interleaved rounds ({threads} threads):")
    print(f"  {'job':44} {'fresh min-max (ms)':>22} {'spread':>7} {'kept ms':>9} {'kept/fresh':>10}")
    for job in jobs:
        name = job.describe()
        low, high, middle, ours = min(fresh[name]), max(fresh[name]), statistics.median(fresh[name]), \
            statistics.median(kept[name])
        ok = low <= ours <= high or abs(ours / middle - 1) <= (high - low) / middle
        inside += ok
        ratios.append(ours / middle)
        print(f"  {name[:44]:44} {f'{low:.2f}-{high:.2f}':>22} {(high - low) / middle:>7.1%} {ours:>9.2f} "
              f"{ours / middle:>10.3f}{'' if ok else '  outside'}")
    print(f"  {inside} of {len(jobs)} within the between-process spread; kept/fresh median {statistics.median(ratios):.3f}"
          f", range {min(ratios):.3f}-{max(ratios):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", action="append", type=Path, help="a checkout to time (repeatable; default this one)")
    parser.add_argument("--model", action="append", help="default: every FastViT variant")
    parser.add_argument("--backend", action="append", help=f"default: {' '.join(CPU_RUNTIMES)}")
    parser.add_argument("--rounds", type=int, default=3, help="fidelity rounds (0: cost only)")
    parser.add_argument("--fidelity-model", action="append", help="models in the fidelity part (default t8 sa12)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--shared-cache", action="store_true", help="one artifact cache for every checkout: only "
                        "the first times a cold sweep (the model code must be the same in all)")
    args = parser.parse_args()
    models, backends = args.model or list_models(), args.backend or CPU_RUNTIMES
    if not args.skip_cost:
        cost([p.resolve() for p in args.repo or [REPO]], models, backends, args.shared_cache)
    if args.rounds:
        with tempfile.TemporaryDirectory(prefix="sweep-fidelity-") as tmp:
            fidelity(args.fidelity_model or ["t8", "sa12"], backends, args.rounds, args.threads, Path(tmp) / "cache")


if __name__ == "__main__":
    main()
