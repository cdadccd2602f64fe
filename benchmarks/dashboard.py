"""How fast `harness serve`'s pages are on a large database.

Fills a results database through the store's own writers (store.save_run, one transaction per run, as a
sweep writes) with --runs runs of --samples timed samples each (default 100,000 runs, 5,000,000 samples):
--hosts lab machines x models x CPU targets x precisions, timed again and again over months, so every page
has the most to aggregate (latest runs, claims with intervals, histograms, a history of ~90 points, the lab).
Then asks the dashboard (in process, Flask's test client: the server's time, no network) for each page once
in a fresh process and --repeat times more, and prints the first, the median and the slowest of the rest.
Target: every page under 1 s.

    python benchmarks/dashboard.py --db /tmp/dashboard.db          # fill (minutes), then time
    python benchmarks/dashboard.py --db /tmp/dashboard.db --reuse  # time an already filled database
    python benchmarks/dashboard.py --db postgresql+psycopg://...   # the same over PostgreSQL
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import store  # noqa: E402
from harness.baselines import own_resolution  # noqa: E402
from harness.protocol import Interference, OpRow, RunResult  # noqa: E402
from harness.spec import ModelSpec, Target  # noqa: E402
from harness.stats import summarize  # noqa: E402

MODELS = ("t8", "t12", "s12", "sa12", "sa24", "sa36", "ma36", "timm:mobileone_s4", "timm:convnext_base",
          "timm:caformer_s18", "timm:efficientnet_b0", "timm:resnet50")
TARGETS = ("torch/cpu", "torch-compile/cpu", "onnxruntime/cpu", "openvino/cpu", "litert/cpu", "executorch/cpu")
PRECISIONS = ("fp32", "int8")
BASE_MS = {"t8": 6, "t12": 12, "s12": 14, "sa12": 17, "sa24": 30, "sa36": 45, "ma36": 60, "timm:mobileone_s4": 16,
           "timm:convnext_base": 110, "timm:caformer_s18": 28, "timm:efficientnet_b0": 8, "timm:resnet50": 40}
START = 1_750_000_000.0  # runs spread over the months after this (Unix time)


def fill(engine, runs: int, samples: int, hosts: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    keys = list(itertools.product(range(hosts), MODELS, TARGETS, PRECISIONS))
    rounds = -(-runs // len(keys))
    written, began = 0, time.perf_counter()
    for round_ in range(rounds):
        for host_index in range(hosts):
            host = {"hostname": f"lab-{host_index:02d}", "cpu_model": f"CPU model {host_index % 3}",
                    "logical_cores": 8, "os": "Linux 6.8", "machine": "x86_64", "isa": "avx2 avx512f"}
            sweep = store.start_sweep(engine, f"harness run --device cpu (benchmark round {round_})")
            for _, model, target, precision in (k for k in keys if k[0] == host_index):
                if written >= runs:
                    break
                backend, device = target.split("/", 1)
                base = BASE_MS[model] * (1 + 0.3 * TARGETS.index(target)) * (0.6 if precision == "int8" else 1)
                drift = 1 + (0.25 if round_ > rounds * 0.7 and target == "openvino/cpu" else 0)  # a regression
                ns = (base * drift * rng.lognormal(0, 0.04, samples) * 1e6).astype(np.int64).tolist()
                when = START + round_ * 86_400 + host_index * 3_600
                result = RunResult(
                    status="ok" if rng.random() > 0.01 else "crashed", samples_ns=ns, warmup_ns=ns[:5],
                    first_ns=ns[0] * 4, summary=summarize(ns), started_at=when, finished_at=when + 10,
                    interference=Interference(0.05, 0.0, 0.4, 0.5, 0, 2900.0), parity_max_abs=1e-6,
                    op_profile=[OpRow(f"stage{i}", "Conv", cls, 4, base / 6) for i, cls in enumerate(
                        ("conv_dw_7x7", "conv_pointwise", "conv_dense", "attention_matmul", "linear", "other"))],
                    environment={"versions": {backend: f"1.{round_ // 30}.0"}, "git_revision": "bench",
                                 **({"agent": f"agent-{host_index:02d}"} if host_index % 2 else {})})
                if result.status == "crashed":
                    result.summary, result.samples_ns, result.log = None, [], "worker died\n" * 20
                store.save_run(engine, result, spec=ModelSpec(model, own_resolution()(model), 1, "reparam"),
                               target=Target(backend, device), threads=8, precision=precision, host=host,
                               sweep_id=sweep)
                written += 1
            store.finish_sweep(engine, sweep, "finished")
        elapsed = time.perf_counter() - began
        print(f"  {written:,} runs written ({written / elapsed:.0f}/s)", file=sys.stderr, flush=True)
        if written >= runs:
            break


def pages(engine) -> dict[str, str]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from harness.store import Run

    with Session(engine) as session:
        last = session.scalar(select(Run).where(Run.status == "ok").order_by(Run.id.desc()).limit(1))
        series = "&".join(f"{k}={getattr(last, k)}" for k in ("host_id", "model", "resolution", "batch", "form",
                                                               "weights", "target", "threads", "precision"))
        return {"overview": "/", "overview (load time)": "/?metric=load", "claims": "/claims",
                "claims (one device)": "/claims?device=cpu&claim=s12_vs_mobileone_s4",
                "model": f"/model/{last.model}", "model t8": "/model/t8", "run": f"/run/{last.id}",
                "history (list)": "/history", "history (one series)": f"/history?{series}", "lab": "/lab"}


def time_pages(db: str, repeat: int) -> list[tuple[str, float, float, float]]:
    """Per page: the first request in this fresh process (nothing computed yet: the claims' intervals are
    bootstrapped then; `harness serve` does that in the background as it starts), then the median and the
    slowest of `repeat` more."""
    from harness.web.app import create_app

    engine = store.open_reader(db)
    client = create_app(engine).test_client()
    found = []
    for name, path in pages(engine).items():
        times = []
        for _ in range(repeat + 1):
            began = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - began)
            if response.status_code != 200:
                raise SystemExit(f"{path}: HTTP {response.status_code}")
        found.append((f"{name} {path}", times[0], statistics.median(times[1:]), max(times[1:])))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="a SQLite path or SQLAlchemy URL to fill and time")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=50, help="timed samples per run")
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5, help="requests per page")
    parser.add_argument("--reuse", action="store_true", help="time the database as it is, without filling it")
    args = parser.parse_args()
    if not args.reuse:
        engine = store.open_engine(args.db)
        if store.count_runs(engine):
            raise SystemExit(f"{args.db} already holds runs: give an empty database, or --reuse to time it")
        print(f"filling {args.db}: {args.runs:,} runs x {args.samples} samples", file=sys.stderr)
        fill(engine, args.runs, args.samples, args.hosts)
        engine.dispose()
    engine = store.open_reader(args.db)
    print(f"{store.count_runs(engine):,} runs in {args.db}")
    engine.dispose()
    rows = time_pages(args.db, args.repeat)
    width = max(len(name) for name, *_ in rows)
    print(f"{'page':<{width}}  first s  median s  slowest s")
    for name, first, median, slowest in rows:
        flag = "" if max(first, slowest) < 1.0 else "  (over 1 s)"
        print(f"{name:<{width}}  {first:7.3f}  {median:8.3f}  {slowest:9.3f}{flag}")


if __name__ == "__main__":
    main()
