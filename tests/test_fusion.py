"""Fusion found by timing: modules that follow each other in a model run alone and as one composition, and a
runtime that fuses them saves most of the cheaper one's time."""
from __future__ import annotations

import pytest
import torch

from harness.measure.child import WorkerPerTarget
from harness.measure.layers import layer_model
from harness.measure.predict import detect_fusions
from harness.predict.fusion import Composition, Timed
from harness.protocol import RunResult
from harness.spec import ModelSpec, Target, example_input
from harness.stats import Summary

BLOCKS = ModelSpec("d2.1.1.1-w64.128.256.512-r4-mmmm", 64)
FFN = "stages.0.blocks.0.mlp"


def test_a_composition_computes_what_the_model_computes_there():
    composed, x = layer_model(BLOCKS, f"{FFN}.fc1+{FFN}.act")
    model = BLOCKS.build()
    seen = {}
    hook = dict(model.named_modules())[f"{FFN}.fc2"].register_forward_pre_hook(
        lambda _m, args: seen.setdefault("fc2 reads", args[0].clone()))
    with torch.no_grad():
        model(example_input(BLOCKS))
        hook.remove()
        assert torch.allclose(composed(x), seen["fc2 reads"], rtol=1e-5, atol=1e-6)
    assert [type(m).__name__ for m in composed] == ["Conv2d", "GELU"]


def test_modules_that_do_not_follow_each_other_are_no_composition():
    with pytest.raises(ValueError, match="does not read what"):
        layer_model(BLOCKS, f"{FFN}.fc1+{FFN}.fc2")  # the GELU runs between them
    with pytest.raises(ValueError, match="has no layer"):
        layer_model(BLOCKS, f"{FFN}.fc1+{FFN}.nothing")


def timed(ms: float, half: float = 0.01) -> Timed:
    return Timed(ms, ms - half, ms + half)


@pytest.mark.parametrize("together, half, fused", [
    (1.02, 0.01, True),    # the activation's 0.2 ms all but gone: fused
    (1.22, 0.01, False),   # each in turn: two kernels
    (1.09, 0.01, True),    # over half the cheaper one saved
    (1.02, 0.10, False),   # the same saving, but within the medians' own uncertainty
])
def test_a_fusion_is_a_saving_beyond_noise(together, half, fused):
    # conv 1.0 ms and activation 0.2 ms alone, 0.02 ms of it the runtime's per-call overhead each time
    found = Composition("conv+act", timed(1.02, half), timed(0.22, half), timed(together + 0.02, half), 0.02)
    assert found.fused is fused
    assert found.saved_ms == pytest.approx(1.2 - together)


def test_onnx_runtime_fuses_conv_bn_relu_and_not_two_repmixer_blocks(tmp_path):
    """ONNX Runtime's documented graph optimizations fold a BatchNorm into the convolution before it and apply a
    ReLU inside it (Conv BatchNorm Fusion, Conv Activation Fusion); two whole FastViT blocks stay two. The control
    is the convolution against BatchNorm+ReLU together (0.2 ms beside a 2.7 ms convolution): a ReLU alone (0.08
    ms) was within the drift between separately timed runs, and judged unfused one time in five."""
    for attempt in range(3):  # on some CPUs the saving sits near the threshold (45 % once, 2026-12-08): up to 3 tries
        with WorkerPerTarget() as worker:
            found = detect_fusions(Target("onnxruntime", "cpu"), lambda jobs: [(None, worker(j, 600)) for j in jobs],
                                   threads=1, cache_dir=tmp_path / str(attempt),
                                   names=["conv+bn-relu", "repmixer+repmixer"])
        by_name = {c.name: c for c in found}
        assert set(by_name) == {"conv+bn-relu", "repmixer+repmixer"}
        conv_relu, blocks = by_name["conv+bn-relu"], by_name["repmixer+repmixer"]
        assert not blocks.fused and abs(blocks.saved_share) < 0.3, blocks  # two blocks are never one, on any try
        if conv_relu.fused:
            break
    assert conv_relu.fused and conv_relu.saved_share > 0.5, conv_relu


def ran(ms: float) -> RunResult:
    return RunResult("ok", summary=Summary(median_ms=ms, median_ci_low_ms=ms - 0.01, median_ci_high_ms=ms + 0.01))


def test_each_module_keeps_its_fastest_timing_a_round_apart(tmp_path):
    """A slow stretch (this VM's other vCPU gone for seconds) during one timing of the composition made conv+BN-ReLU
    look unfused; each job runs twice, a round apart, and the faster timing is kept."""
    slow_round = [ran(0.02), ran(1.02), ran(0.22), ran(2.40)]  # overhead, conv, BN-ReLU, both (slow stretch)
    fast_round = [ran(0.03), ran(1.10), ran(0.25), ran(1.05)]
    asked = []

    def run_jobs(jobs):
        asked.append([job.layer for job in jobs])
        return [(None, result) for result in slow_round + fast_round]

    [found] = detect_fusions(Target("onnxruntime", "cpu"), run_jobs, threads=1, cache_dir=tmp_path,
                             names=["conv+bn-relu"])
    assert len(asked) == 1 and asked[0][:4] == asked[0][4:]  # the whole round, then the whole round again
    assert (found.first.median_ms, found.second.median_ms, found.together.median_ms) == (1.02, 0.22, 1.05)
    assert found.overhead_ms == 0.02 and found.fused

    [once] = detect_fusions(Target("onnxruntime", "cpu"), lambda jobs: [(None, r) for r in slow_round],
                            threads=1, cache_dir=tmp_path, names=["conv+bn-relu"], timings=1)
    assert not once.fused  # what one timing alone would have said


def test_a_failed_timing_is_replaced_by_the_other_round(tmp_path):
    failed = RunResult("error", error="worker crashed")
    results = [ran(0.02), failed, ran(0.22), ran(1.05), ran(0.02), ran(1.02), failed, ran(1.06)]
    [found] = detect_fusions(Target("onnxruntime", "cpu"), lambda jobs: [(None, r) for r in results],
                             threads=1, cache_dir=tmp_path, names=["conv+bn-relu"])
    assert (found.first.median_ms, found.second.median_ms, found.together.median_ms) == (1.02, 0.22, 1.05)
