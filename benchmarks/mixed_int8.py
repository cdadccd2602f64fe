"""Does a mixed int8 recipe beat both fp32 and full int8? Per model and runtime: fp32, full int8, and int8 with
chosen op classes kept in float (harness run --keep-float), timed in fresh worker processes in interleaved rounds
(every recipe once per round, so drift hits all alike), with each artifact's agreement with fp32 torch on the
held-out photographs and the share of its FLOPs the runtime computes in int8.

    python benchmarks/mixed_int8.py --cache /tmp/mixed-cache --prepare-only   # exports (may run beside other work)
    python benchmarks/mixed_int8.py --cache /tmp/mixed-cache --rounds 3       # timing: nothing else on the machine
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.measure.child import measure_in_child  # noqa: E402
from harness.protocol import Job, TimingPolicy  # noqa: E402
from harness.spec import ModelSpec, Target  # noqa: E402

RUNTIMES = ["onnxruntime", "openvino", "litert", "executorch"]
RECIPES = ["", "conv_dw_7x7", "conv_dw_3x3,conv_dw_7x7"]  # after fp32; "": full int8
RUN_POLICY = TimingPolicy(warmup_iterations=10, warmup_seconds=1.0, min_iterations=50, min_seconds=3.0)  # harness run's


def recipe_name(precision: str, keep_float: str) -> str:
    return f"{precision}+float({keep_float})" if keep_float else precision


def jobs_for(models: list[str], runtimes: list[str], recipes: list[str], threads: int, cache: Path) -> list[Job]:
    found = []
    for model in models:
        for runtime in runtimes:
            target = Target(runtime, "cpu")
            found.append(Job(ModelSpec(model), target, threads, RUN_POLICY, str(cache), "fp32", profile_iterations=0))
            found += [Job(ModelSpec(model), target, threads, RUN_POLICY, str(cache), "int8", profile_iterations=0,
                          keep_float=keep) for keep in recipes]
    return found


def int8_share(result) -> float | None:
    rows = result.precision_coverage
    total = sum(r.low_flops + r.float_flops for r in rows)
    return sum(r.low_flops for r in rows) / total if total else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="default: t8 s12")
    parser.add_argument("--backend", action="append", help=f"default: {' '.join(RUNTIMES)}")
    parser.add_argument("--keep-float", action="append", help="a recipe's op classes, comma-joined (repeatable; "
                        f"default: {' and '.join(r for r in RECIPES if r)})")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--prepare-only", action="store_true", help="export every artifact, time nothing")
    parser.add_argument("--first-pass-counts", action="store_true", help="with a warm --cache: the pass that reads "
                        "agreement and coverage is timed too and counts as a round")
    args = parser.parse_args()
    recipes = [""] + (args.keep_float or [r for r in RECIPES if r])
    jobs = jobs_for(args.model or ["t8", "s12"], args.backend or RUNTIMES, recipes, args.threads,
                    args.cache.resolve())
    first = {}
    for job in jobs:  # exports (and agreement, coverage) outside the timed rounds
        result = measure_in_child(job, 3600)
        first[job] = result
        print(f"  prepared {job.describe()} {recipe_name(job.precision, job.keep_float)}: {result.status}"
              f"{' ' + (result.error or '')[:200] if result.status != 'ok' else ''}", flush=True)
    if args.prepare_only:
        return
    medians: dict[Job, list[float]] = {job: [first[job].summary.median_ms] if args.first_pass_counts else []
                                       for job in jobs if first[job].status in ("ok", "inaccurate")}
    for r in range(args.rounds):
        order = list(medians) if r % 2 == 0 else list(reversed(medians))
        for job in order:
            result = measure_in_child(job, 3600)
            if result.summary:
                medians[job].append(result.summary.median_ms)
        print(f"  round {r + 1} done", flush=True)
    rounds = args.rounds + args.first_pass_counts
    print(f"\n{rounds} interleaved rounds, fresh process per job, {args.threads} threads; median of process "
          "medians (min-max); speedups against fp32 and full int8 of the same runtime")
    print(f"  {'model':6} {'runtime':12} {'recipe':32} {'ms':>8} {'min-max':>14} {'vs fp32':>8} {'vs int8':>8} "
          f"{'cosine':>7} {'top-1':>6} {'int8 FLOPs':>10}")
    for job, values in medians.items():
        if not values:
            continue
        same = {(j.precision, j.keep_float): statistics.median(v) for j, v in medians.items()
                if v and j.spec == job.spec and j.target == job.target}
        ms = statistics.median(values)
        fp32, full = same.get(("fp32", "")), same.get(("int8", ""))
        agreement, share = first[job].agreement, int8_share(first[job])
        print(f"  {job.spec.model:6} {job.target.backend:12} {recipe_name(job.precision, job.keep_float):32} "
              f"{ms:8.2f} {f'{min(values):.2f}-{max(values):.2f}':>14} "
              f"{f'{fp32 / ms:.2f}x' if fp32 else '':>8} {f'{full / ms:.2f}x' if full else '':>8} "
              f"{f'{agreement.cosine:.4f}' if agreement else '':>7} {f'{agreement.top1:.0%}' if agreement else '':>6} "
              f"{f'{share:.0%}' if share is not None else '':>10}")


if __name__ == "__main__":
    main()
