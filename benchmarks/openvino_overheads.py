"""What each source of overhead in a naive OpenVINO timing loop costs, measured side by side.

Variants of one model (same weights), timed in alternating rounds in one process:
  static+request   static-shape IR, input tensor set once, `request.infer()` (what the harness does)
  static+call      static-shape IR, `compiled(x)` per call (numpy -> tensor, output dict each time)
  dynamic+request  IR converted without `input=` (dynamic shape), `request.infer()`
  dynamic+call     dynamic IR and `compiled(x)`: the naive loop
Prints medians and each variant's ratio to the harness's way.

    python benchmarks/openvino_overheads.py --model t8 --rounds 6
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openvino as ov  # noqa: E402
import openvino.properties as props  # noqa: E402
import openvino.properties.hint as hints  # noqa: E402
import torch  # noqa: E402

from harness.spec import ModelSpec  # noqa: E402


def compile_ir(model: torch.nn.Module, example: torch.Tensor, static: bool, threads: int):
    converted = ov.convert_model(model, example_input=example, **({"input": [tuple(example.shape)]} if static else {}))
    config = {hints.performance_mode: hints.PerformanceMode.LATENCY, props.num_streams: 1,
              props.inference_num_threads: threads, hints.inference_precision: ov.Type.f32}
    return ov.Core().compile_model(converted, "CPU", config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="t8")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()

    model = ModelSpec(args.model).build()
    example = torch.randn(1, 3, 256, 256)
    x = example.numpy()
    loops = {}
    for static in (True, False):
        compiled = compile_ir(model, example, static, args.threads)
        request = compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(x))
        label = "static" if static else "dynamic"
        loops[f"{label}+request"] = request.infer
        loops[f"{label}+call"] = (lambda c: lambda: c(x))(compiled)
    samples = {k: [] for k in loops}
    for fn in loops.values():
        for _ in range(20):
            fn()
    for r in range(args.rounds):
        order = list(loops) if r % 2 == 0 else list(reversed(loops))
        for key in order:
            fn = loops[key]
            for _ in range(args.per_round):
                start = time.perf_counter_ns()
                fn()
                samples[key].append(time.perf_counter_ns() - start)
    base = statistics.median(samples["static+request"])
    print(f"{args.model}, {args.threads} threads, openvino {ov.__version__}")
    for key, values in samples.items():
        median = statistics.median(values)
        print(f"{key:16} median {median / 1e6:7.3f} ms   x{median / base:.3f}")


if __name__ == "__main__":
    main()
