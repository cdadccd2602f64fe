"""torch.compile targets: compiled before timing, graph breaks and recompilations counted from dynamo and
stored, a run that recompiled while timed kept out of every claim, and the mode chosen per target."""
from __future__ import annotations

import json
import tempfile

import numpy as np
import pytest
import torch
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from backends import BACKENDS
from backends.torch_compile import DEFAULT_MODE, TorchCompileBackend
from harness import store
from harness.measure import targets as devices
from harness.cli import app
from harness.measure.timing import measure
from harness.measure.worker import check_steady, load_options
from harness.protocol import Compilation, RunResult, TimingPolicy
from harness.spec import Target

QUICK = TimingPolicy(warmup_iterations=2, warmup_seconds=0.0, min_iterations=5, min_seconds=0.0)
EXAMPLE = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)


class Steady(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x).relu()


class Breaks(Steady):
    """Python dynamo cannot trace in the middle of forward: two graphs, one break."""

    def forward(self, x):
        y = self.conv(x)
        torch._dynamo.graph_break()
        return y.relu()


class Recompiles(Steady):
    """A Python counter in forward: dynamo specialises on it, so every call fails a guard and compiles again."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.conv(x) * self.calls


def compiled(module: torch.nn.Module):
    return TorchCompileBackend().load(module.eval(), None, "cpu", 1, example=EXAMPLE,
                                      compile_cache=tempfile.mkdtemp(prefix="test-inductor-"))


def test_graph_breaks_are_counted_with_dynamos_reason():
    clean = compiled(Steady()).compilation()
    assert (clean["graphs"], clean["graph_breaks"], clean["break_reasons"], clean["recompiles"]) == (1, 0, [], 0)
    assert clean["compile_ms"] > 0 and clean["mode"] == "default"
    for _ in range(2):  # the second compile in the process breaks for the same reason, and says so too
        broken = compiled(Breaks()).compilation()
        assert broken["graphs"] == 2 and broken["graph_breaks"] == 1
        assert "graph_break()" in broken["break_reasons"][0] and "\n" not in broken["break_reasons"][0]


def test_a_recompile_while_timed_is_counted_and_the_run_kept_from_claims():
    session = compiled(Recompiles())
    assert session.compilation()["recompiles"] == 0  # what happened while loading is not timing's
    measure(session.infer, QUICK)
    found = session.compilation()
    assert found["recompiles"] > 0
    result = RunResult(status="ok", compilation=Compilation(**found))
    check_steady(result)
    assert result.status == "recompiled" and "include compilation" in result.error

    steady = compiled(Steady())
    measure(steady.infer, QUICK)
    result = RunResult(status="ok", compilation=Compilation(**steady.compilation()))
    check_steady(result)
    assert result.status == "ok" and result.compilation.recompiles == 0


def test_compiled_output_and_layout_match_eager():
    module = Steady().eval()
    session = compiled(module)
    assert session.x.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected = module(torch.from_numpy(EXAMPLE)).numpy()
    np.testing.assert_allclose(session.output(), expected, rtol=1e-5, atol=1e-6)
    assert session.facts()["memory_format"] == "channels_last" and session.profile(3) is None


def test_compile_mode_is_a_target_option():
    backend = BACKENDS["torch-compile"]
    default, _ = devices.plan_targets("cpu", ["torch-compile"])
    assert [t.name for t in default] == ["torch-compile/cpu"]
    chosen, _ = devices.plan_targets("cpu", ["torch-compile", "torch"], compile_mode="max-autotune")
    assert [t.name for t in chosen] == ["torch/cpu", "torch-compile/cpu[mode=max-autotune]"]
    assert backend.target_options("gpu", {"mode": "reduce-overhead"}) == "" == backend.target_options("gpu", {})
    assert DEFAULT_MODE == {"cpu": "default", "gpu": "reduce-overhead"}
    with pytest.raises(ValueError, match="unknown torch.compile mode 'fast'"):
        backend.target_options("cpu", {"mode": "fast"})
    options = load_options(backend, chosen[1], torch.from_numpy(EXAMPLE), tempfile.gettempdir())
    assert options["mode"] == "max-autotune" and options["example"].shape == EXAMPLE.shape
    assert load_options(BACKENDS["torch"], Target("torch", "cpu"), torch.from_numpy(EXAMPLE), None) == {}


def test_gpu_target_says_why_not_here():
    backend = BACKENDS["torch-compile"]
    if torch.cuda.is_available():
        assert backend.unavailable_reason("gpu") is None
    else:
        assert backend.unavailable_reason("gpu") == "no CUDA device visible to torch"
    _, skipped = devices.plan_targets("gpu", ["torch-compile"], precision="fp16")
    assert [t.name for t, _ in skipped] == ([] if torch.cuda.is_available() else ["torch-compile/gpu"])


def test_torch_compile_run_stores_compile_time_and_reuses_the_cold_compile_marked_so(tmp_path):
    db = tmp_path / "results.db"
    command = ["run", "--device", "cpu", "--model", "t8", "--resolution", "64", "--warmup", "2", "--min-iterations",
               "10", "--min-time", "0", "--profile", "0", "--db", str(db), "--cache", str(tmp_path / "cache")]
    result = CliRunner().invoke(app, [*command, "--backend", "torch-compile", "--backend", "torch", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["target"]: r for r in json.loads(result.stdout)}
    assert rows["torch-compile/cpu"]["status"] == rows["torch/cpu"]["status"] == "ok"
    assert rows["torch/cpu"]["compile_ms"] is None
    engine = store.open_engine(str(db))
    with Session(engine) as session:
        run = session.query(store.Run).filter_by(target="torch-compile/cpu").one()
        assert run.parity_rel < 1e-4 and run.agreement_cosine > 0.9999
        assert (run.compile_mode, run.graphs, run.graph_breaks, run.recompiles) == ("default", 1, 0, 0)
        # cold: an empty cache, seconds of C++ compilation; warm: the same graph from that cache
        assert run.compile_ms > 1000 and 0 < run.compile_warm_ms < run.compile_ms
        assert run.load_ms >= run.compile_ms and run.load_warm_ms >= run.compile_warm_ms
        assert run.environment["compile_mode"] == "default"
        assert not run.compile_cold_reused and not run.environment["compile_cold"]["reused"]
        first = (run.compile_ms, run.load_ms, run.environment["compile_cold"]["key"])

    # again: the cold compile of the same model, versions and mode is reused, marked so; the warm one is the run's
    again = CliRunner().invoke(app, [*command, "--backend", "torch-compile", "--format", "table"])
    assert again.exit_code == 0, again.output
    assert "reused" in again.stdout and "the cold compile was measured once" in again.stdout
    with Session(engine) as session:
        reused = session.query(store.Run).filter_by(target="torch-compile/cpu").order_by(store.Run.id.desc()).first()
        assert reused.status == "ok" and reused.compile_cold_reused and reused.environment["compile_cold"]["reused"]
        assert (reused.compile_ms, reused.load_ms, reused.environment["compile_cold"]["key"]) == first
        assert 0 < reused.compile_warm_ms < reused.compile_ms and reused.load_warm_ms >= reused.compile_warm_ms

    # --cold-compile: compiled cold again, in a fresh process, and kept for the next runs
    forced = CliRunner().invoke(app, [*command, "--backend", "torch-compile", "--cold-compile", "--format", "json"])
    assert forced.exit_code == 0, forced.output
    with Session(engine) as session:
        cold = session.query(store.Run).filter_by(target="torch-compile/cpu").order_by(store.Run.id.desc()).first()
        assert cold.status == "ok" and not cold.compile_cold_reused and cold.compile_ms != first[0]
        assert cold.compile_ms > cold.compile_warm_ms


def _stored(engine, model, resolution, target, ms, *, batch=1, precision="fp32", compile_ms=None, seed=0):
    from helpers import HOST

    from harness.spec import ModelSpec
    from harness.stats import summarize

    samples = [int(ms * 1e6 * (1 + 0.005 * x)) for x in np.random.default_rng(seed).standard_normal(40)]
    backend, device = target.split("/", 1)
    result = RunResult(status="ok", samples_ns=samples, summary=summarize(samples),
                       environment={"versions": {"torch": "2.14.1", **({"gpu": "NVIDIA H200"} if device == "gpu"
                                                                       else {})}},
                       compilation=Compilation("reduce-overhead", compile_ms, 1, 0, [], 0, compile_ms / 10)
                       if compile_ms else None)
    store.save_run(engine, result, spec=ModelSpec(model, resolution, batch), target=Target(backend, device),
                   threads=2, precision=precision, host=HOST)


def test_findings_have_a_gpu_section_per_gpu_and_compiled_beside_eager(engine, tmp_path):
    from harness.analysis.compiled import compiled_vs_eager
    from harness.baselines import own_resolution
    from harness.views.findings import render

    for seed, (model, res, eager, fast) in enumerate((("s12", 256, 2.0, 1.11), ("mobileone_s4", 224, 2.2, 0.78))):
        _stored(engine, model, res, "torch/gpu", eager, seed=seed)
        _stored(engine, model, res, "torch-compile/gpu", fast, batch=8, precision="fp16", compile_ms=12_000, seed=seed)
        _stored(engine, model, res, "torch/gpu", eager * 3, batch=8, precision="fp16", seed=seed)
        _stored(engine, model, res, "torch/cpu", eager * 20, seed=seed)
        _stored(engine, model, res, "torch-compile/cpu", eager * 15, compile_ms=30_000, seed=seed)
    rows = {(r.model, r.device, r.batch): r for r in compiled_vs_eager(engine)}
    gpu = rows[("s12", "gpu", 8)]
    assert gpu.gpu == "NVIDIA H200" and gpu.eager_ms == pytest.approx(6.0, rel=0.01)
    assert gpu.speedup == pytest.approx(6.0 / 1.11, rel=0.01) and gpu.compile_ms == 12_000
    assert rows[("s12", "cpu", 1)].speedup == pytest.approx(20 / 15, rel=0.01)
    text, _ = render(engine, own_resolution())
    gpu_part = text[text.index("## The paper's claims on the GPU: NVIDIA H200"):]
    assert "| s12_vs_mobileone_s4 | fp16, batch 8, torch-compile/gpu (the paper's protocol) |" in gpu_part
    assert "| s12_vs_mobileone_s4 | fp32, batch 1, torch/gpu |" in gpu_part
    assert "## Compiled PyTorch on the GPU (NVIDIA H200)" in gpu_part
    cpu_part = text[:text.index("## The paper's claims on the GPU")]
    assert "torch/gpu" not in cpu_part.split("## The paper's claims on this CPU")[1]  # GPUs: their own section
    assert "## Compiled PyTorch on this CPU" in cpu_part and "| 30.0 / 3.0 | 0 |" in cpu_part
