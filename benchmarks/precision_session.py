"""int8 against fp32 on every CPU runtime here, in one interleaved session, and what quantizing costs.

fp32 and int8 jobs of each (model, runtime) go into one sweep, each timed in R fresh processes round-robin
(so slow drift of the machine hits both precisions alike). Per (model, runtime) it prints the median of the
process medians in each precision, their ratio, the int8 run's agreement with fp32 torch on the held-out
photographs, the share of FLOPs the runtime's own view of the artifact computes in int8, and what
calibrating + quantizing + exporting the int8 artifact took (the cache records it; a cached artifact keeps
the time of its first build). Runs are stored in DB like any sweep's.

    python benchmarks/precision_session.py --model t8 --model s12 --rounds 3 --db precision.db
Nothing else should run on the machine meanwhile (it times).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.analysis.precision import coverage  # noqa: E402
from harness.measure.targets import plan_targets  # noqa: E402
from harness.measure import plan, sweep  # noqa: E402
from harness.measure.environment import host_facts  # noqa: E402
from harness.protocol import TimingPolicy  # noqa: E402
from harness.spec import ModelSpec  # noqa: E402
from harness.store import open_engine, read_only_query  # noqa: E402

BACKENDS = ["onnxruntime", "openvino", "litert", "executorch"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--backend", action="append", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=2.0)
    parser.add_argument("--db", default="precision.db")
    parser.add_argument("--cache", default=str(sweep.DEFAULT_CACHE))
    args = parser.parse_args()
    models = args.model or ["t8", "s12"]
    engine = open_engine(args.db)
    policy = TimingPolicy(min_seconds=args.min_time)
    jobs = []
    for precision in ("fp32", "int8"):
        targets, skipped = plan_targets("cpu", args.backend or BACKENDS, precision)
        for target, reason in skipped:
            print(f"skip {target.name} {precision}: {reason}")
        specs = [ModelSpec(m) for m in models]
        jobs += plan.plan_jobs(specs, targets, threads=args.threads, policy=policy, cache_dir=Path(args.cache),
                                precision=precision, profile_iterations=0)
    outcome = sweep.run_sweep(engine, jobs, "benchmarks/precision_session.py " + " ".join(sys.argv[1:]),
                              on_done=lambda job, result: print(f"  {job.describe()} {job.precision}: {result.status}",
                                                                flush=True),
                              repeats=sweep.Repeats(count=args.rounds))
    _, rows = read_only_query(engine, f"""
        SELECT model, backend, precision, status, median_ms, agreement_top1, agreement_cosine, build_ms
        FROM runs WHERE sweep_id = {outcome.sweep_id} ORDER BY id""")
    facts = host_facts()
    print(f"\n{facts['cpu_model']}, ISA: {facts.get('isa') or '?'}; {args.threads} threads, {args.rounds} processes "
          "per job, interleaved")
    print(f"{'model':6} {'runtime':12} {'fp32 ms':>8} {'int8 ms':>8} {'int8/fp32':>9} {'top-1':>6} {'cosine':>7} "
          f"{'int8 FLOPs':>10} {'quantize s':>10}")
    for model in models:
        shares = {c.backend: c.flop_share for c in coverage(engine, ModelSpec(model).model, 256, "reparam")
                  if c.precision == "int8"}
        for backend in args.backend or BACKENDS:
            mine = [r for r in rows if r[0] == ModelSpec(model).model and r[1] == backend]
            medians = {p: [r[4] for r in mine if r[2] == p and r[3] == "ok"] for p in ("fp32", "int8")}
            int8 = [r for r in mine if r[2] == "int8"]
            if not int8 or not medians["fp32"] or not medians["int8"]:
                print(f"{model:6} {backend:12} (no valid pair: {sorted({r[3] for r in mine})})")
                continue
            fp32_ms, int8_ms = statistics.median(medians["fp32"]), statistics.median(medians["int8"])
            last = int8[-1]
            share = shares.get(backend)
            print(f"{model:6} {backend:12} {fp32_ms:8.2f} {int8_ms:8.2f} {int8_ms / fp32_ms:9.2f} "
                  f"{last[5]:6.0%} {last[6]:7.4f} {share if share is None else f'{share:.1%}':>10} "
                  f"{(last[7] or 0) / 1e3:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
