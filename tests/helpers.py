"""Shared test utilities: seeded inputs, a scale-relative output comparison, and stored runs."""
from __future__ import annotations

import importlib
import json
import shlex
import sqlite3
from pathlib import Path

import torch
from sqlalchemy import create_engine

from harness import store
from harness.protocol import OpRow, RunResult
from harness.spec import ModelSpec, Target
from harness.stats import summarize

# reparameterize() must match the training form to 1e-4 of the output's scale (float32).
REL_TOL = 1e-4
HOST = {"hostname": "h", "cpu_model": "cpu", "logical_cores": 2, "os": "Linux", "machine": "x86_64"}
FIXTURES = Path(__file__).parent / "fixtures"  # real vendor-tool output
PROFILE = [OpRow("a", "GroupConvolution", "conv_dw_7x7", 6, 1.0), OpRow("b", "Convolution", "conv_pointwise", 20, 3.0)]


def invoke(*args):
    """The harness CLI with these arguments, on a wide terminal; never a traceback."""
    from typer.testing import CliRunner

    from harness.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})
    assert "Traceback" not in result.output, result.output
    return result


def fixture(name: str) -> str:
    """The text of a vendor tool's log in tests/fixtures."""
    return (FIXTURES / name).read_text()


def image(resolution: int = 256, batch: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max abs difference divided by the max abs value of the reference `a`."""
    return ((a - b).abs().max() / a.abs().max().clamp_min(1e-12)).item()


def timed_result(samples_ms, status: str = "ok", warmup: int = 0, first_ms: float | None = None,
                 op_profile=(), noisy: bool = False, footprint=None) -> RunResult:
    """A result as the worker reports it, with these timed samples (milliseconds)."""
    samples = [int(ms * 1e6) for ms in samples_ms]
    return RunResult(status=status, samples_ns=samples, warmup_ns=samples[:warmup], summary=summarize(samples),
                     first_ns=int(first_ms * 1e6) if first_ms is not None else None, op_profile=list(op_profile),
                     noisy=noisy, footprint=footprint)


def save(engine, samples_ms=(1.0,) * 5, *, model: str = "t8", form: str = "reparam", resolution: int = 256,
         target: str = "torch/cpu", threads: int = 2, sweep_id: int | None = None, host: dict = HOST,
         batch: int = 1, precision: str = "fp32", **result_options) -> int:
    """Store one run of `model` on `target` with these timed samples; returns its id."""
    backend, device = target.split("/", 1)
    return store.save_run(engine, timed_result(samples_ms, **result_options),
                          spec=ModelSpec(model, resolution, batch, form), target=Target(backend, device),
                          threads=threads, precision=precision, host=host, sweep_id=sweep_id)


def schema_5_database(path: Path) -> None:
    """What a harness before Alembic wrote: schema 8's tables (migration 0001) less runs.log, a meta
    row saying 5, no alembic_version; one host whose runs were taken on two CPUs (the VM changed)."""
    baseline = importlib.import_module("harness.store.migrations.versions.0001_schema_8").BASELINE
    plain = create_engine(f"sqlite:///{path}")
    baseline.create_all(plain)
    plain.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE runs DROP COLUMN log")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '5')")
        conn.execute("INSERT INTO hosts (id, hostname, cpu_model, logical_cores, os, machine) "
                     "VALUES (1, 'vm', 'AMD EPYC', 2, 'Linux', 'x86_64')")
        for run_id, isa in ((1, None), (2, "avx2"), (3, "avx2 avx512f avx512_bf16"), (4, "avx2")):
            environment = json.dumps({"isa": isa} if isa else {"threads": 2})
            conn.execute("INSERT INTO runs (id, host_id, model, resolution, batch, form, weights, target, backend, "
                         "device, precision, threads, status, imported, median_ms, noisy, environment, started_at) "
                         "VALUES (?, 1, 't8', 256, 1, 'reparam', 'random', 'torch/cpu', 'torch', 'cpu', 'fp32', 2, "
                         "'ok', 0, ?, 0, ?, '2026-11-01 10:00:00')", (run_id, float(run_id), environment))
            conn.executemany("INSERT INTO samples VALUES (?, 'timed', ?, ?)",
                             [(run_id, i, 3_000_000_000 + i) for i in range(25)])
        conn.execute("INSERT INTO op_profiles (run_id, op_name, op_type, op_class, calls, total_ms) VALUES "
                     "(1, 'stages.0.mlp', 'ConvFFN (glue: adds, scales, reshapes)', 'conv_dense', 2, 0.5)")


PHONE = "R58N12ABC"
PHONE_PROPS = {"ro.product.model": "Pixel 7", "ro.soc.model": "Tensor G2", "ro.build.version.release": "14"}


def fake_phone(monkeypatch, tmp_path) -> list[list[str]]:
    """No phone here: a fake adb with one attached (PHONE) that answers getprop (PHONE_PROPS), thermal
    status 1, and runs of benchmark_model with that tool's real log. Returns every adb call it got."""
    from backends import adb
    from backends.litert_backend import BENCHMARK_MODEL_ENV

    tool = tmp_path / "benchmark_model"
    tool.write_bytes(b"\x7fELF")
    monkeypatch.setenv("ADB", "/opt/platform-tools/adb")
    monkeypatch.setenv(BENCHMARK_MODEL_ENV, str(tool))
    calls: list[list[str]] = []

    class Done:
        def __init__(self, stdout):
            self.returncode, self.stdout, self.stderr = 0, stdout, ""

    def fake_run(args, **kwargs):
        calls.append(args)
        if args[1:] == ["devices"]:
            return Done(f"List of devices attached\n{PHONE}\tdevice\n")
        remote = shlex.split(args[4]) if len(args) > 4 and args[3] == "shell" else []
        if remote[:1] == ["getprop"]:
            return Done(PHONE_PROPS.get(remote[1], "") + "\n")
        if remote[:2] == ["dumpsys", "thermalservice"]:
            return Done("Thermal Status: 1\n")
        if remote and remote[0].endswith("benchmark_model"):
            return Done(fixture("benchmark_model_xnnpack_profile.log"))
        return Done("")

    monkeypatch.setattr(adb.subprocess, "run", fake_run)
    return calls
