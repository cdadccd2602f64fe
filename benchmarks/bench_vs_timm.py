"""Our reparameterized FastViT against timm's, same weights, side by side in one process (torch eager, CPU).

For each variant both models are timed in alternating rounds (A B B A ...) so drift in clock speed
or background load hits both alike. Prints per-model medians with spread and the ratio of medians
ours / timm with a bootstrap 95% interval; ratio <= 1.00 means ours is not slower.

    python benchmarks/bench_vs_timm.py                 # all variants, 256 x 256, batch 1
    python benchmarks/bench_vs_timm.py -m t8 -m sa12 --rounds 20 --resolution 384
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

import fastvit

try:
    import timm
    from timm.utils.model import reparameterize_model
except ImportError as exc:  # pragma: no cover - the benchmark needs the reference
    raise SystemExit("this benchmark compares against timm: pip install -e .[test]") from exc


def time_once(model: torch.nn.Module, x: torch.Tensor, iterations: int) -> list[int]:
    samples = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        model(x)
        samples.append(time.perf_counter_ns() - start)
    return samples


def bootstrap_ratio(a: list[int], b: list[int], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = random.Random(seed)
    ratios = sorted(
        statistics.median(rng.choices(a, k=len(a))) / statistics.median(rng.choices(b, k=len(b)))
        for _ in range(resamples)
    )
    return ratios[int(0.025 * resamples)], ratios[int(0.975 * resamples) - 1]


def compare(name: str, resolution: int, rounds: int, per_round: int, warmup: int) -> dict:
    reference = fastvit.randomize_(timm.create_model(f"fastvit_{name}"), seed=0).eval()
    ours = fastvit.load_checkpoint(fastvit.create_model(name), reference.state_dict()).eval()
    reference, ours = reparameterize_model(reference), fastvit.reparameterize(ours)
    x = torch.randn(1, 3, resolution, resolution)
    samples = {"timm": [], "ours": []}
    models = {"timm": reference, "ours": ours}
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-4)
        for model in models.values():
            time_once(model, x, warmup)
        for r in range(rounds):
            order = ("timm", "ours") if r % 2 == 0 else ("ours", "timm")
            for key in order:
                samples[key] += time_once(models[key], x, per_round)
    ms = {k: [s / 1e6 for s in v] for k, v in samples.items()}
    low, high = bootstrap_ratio(samples["ours"], samples["timm"])
    return {
        "name": name,
        "timm_ms": statistics.median(ms["timm"]),
        "ours_ms": statistics.median(ms["ours"]),
        "timm_iqr": _iqr(ms["timm"]),
        "ours_iqr": _iqr(ms["ours"]),
        "ratio": statistics.median(samples["ours"]) / statistics.median(samples["timm"]),
        "ci": (low, high),
        "n": len(samples["ours"]),
    }


def _iqr(values: list[float]) -> float:
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", action="append", choices=fastvit.list_models(),
                        help="variant (repeatable); default all")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, timm {timm.__version__}, {args.threads} threads, "
          f"batch 1, {args.resolution}x{args.resolution}, reparameterized, eval, inference_mode")
    print(f"{'variant':8} {'timm ms (IQR)':>16} {'ours ms (IQR)':>16} {'ours/timm':>10} {'95% CI':>16} {'n':>5}")
    for name in args.model or fastvit.list_models():
        r = compare(name, args.resolution, args.rounds, args.per_round, args.warmup)
        print(f"{r['name']:8} {r['timm_ms']:9.2f} ({r['timm_iqr']:4.2f}) {r['ours_ms']:9.2f} ({r['ours_iqr']:4.2f}) "
              f"{r['ratio']:10.3f} {r['ci'][0]:7.3f}-{r['ci'][1]:.3f} {r['n']:5d}", flush=True)


if __name__ == "__main__":
    main()
