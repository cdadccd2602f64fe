"""The torch/gpu target on a real CUDA device: parity in true fp32, and a sweep through the worker
protocol end to end. Skipped, with the reason, on a machine without one."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import rel_diff
from typer.testing import CliRunner

from backends import BACKENDS
from harness.cli import app
from harness.spec import example_input
from harness.spec import ModelSpec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch")


@pytest.mark.parametrize("model", ["t8", "sa12"])
def test_torch_gpu_computes_what_the_cpu_computes(model):
    spec = ModelSpec(model)
    net, x = spec.build(), example_input(spec)
    with torch.inference_mode():
        reference = net(x)
    backend = BACKENDS["torch"]
    assert backend.unavailable_reason("gpu") is None and backend.versions()["gpu"]
    session = backend.load(net, None, "gpu", threads=1)
    session.prepare(x.numpy())
    assert session.infer() is None  # timed by the host clock around a synchronized call
    assert rel_diff(reference, torch.from_numpy(session.output())) < 1e-4  # TF32 off: fp32 agrees closely


def test_gpu_sweep_end_to_end(tmp_path):
    db = tmp_path / "results.db"
    run = CliRunner().invoke(app, ["run", "--device", "gpu", "--backend", "torch", "--model", "t8", "--model", "sa12",
                                   "--warmup", "5", "--min-iterations", "20", "--min-time", "0.5", "--db", str(db),
                                   "--cache", str(tmp_path / "cache"), "--format", "json"])
    assert run.exit_code == 0, run.output
    rows = json.loads(run.stdout)  # the progress bar goes to stderr
    assert [(r["model"], r["target"], r["status"]) for r in rows] == [("t8", "torch/gpu", "ok"),
                                                                      ("sa12", "torch/gpu", "ok")]
    assert all(0 < r["median_ms"] < 100 for r in rows)
    env = json.loads(CliRunner().invoke(app, ["query", "SELECT environment FROM runs WHERE NOT published",
                                              "--format", "json",
                                              "--db", str(db)]).stdout)
    assert "gpu" in json.loads(env[0]["environment"])["versions"]
    memory = json.loads(CliRunner().invoke(app, ["query", "SELECT model, gpu_peak_mb, load_ms FROM runs WHERE NOT "
                                                 "published ORDER BY id", "--format", "json", "--db", str(db)]).stdout)
    # the session's own weights and activations on the device: sa12's 11.5 M parameters alone are 44 MiB
    assert [m["model"] for m in memory] == ["t8", "sa12"] and all(m["load_ms"] > 0 for m in memory)
    assert 15 < memory[0]["gpu_peak_mb"] < memory[1]["gpu_peak_mb"]
