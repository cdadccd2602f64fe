"""Where a model's time goes: the latest profiled run per target, as shares, through the CLI."""
from __future__ import annotations

import json

from helpers import PROFILE, save
from typer.testing import CliRunner

from harness.analysis.explain import breakdown
from harness.cli import app


def test_explain_breakdown(db, engine):
    save(engine, [10.0] * 5, model="sa12", target="openvino/cpu", op_profile=PROFILE)
    save(engine, [20.0] * 5, model="sa12", target="torch/cpu", op_profile=PROFILE, noisy=True)
    save(engine, [30.0] * 5, model="sa12", target="torch/cpu")  # newer, unprofiled (--profile 0): not shown
    result = CliRunner().invoke(app, ["explain", "--model", "sa12", "--format", "json", "--db", str(db)])
    rows = json.loads(result.output)
    assert [(r["op_class"], r["target"], r["share"]) for r in rows] == [
        ("conv_pointwise", "openvino/cpu", 0.75), ("conv_pointwise", "torch/cpu", 0.75),
        ("conv_dw_7x7", "openvino/cpu", 0.25), ("conv_dw_7x7", "torch/cpu", 0.25)]
    assert {r["median_ms"] for r in rows} == {10.0, 20.0}
    assert {r["target"]: r["noisy"] for r in rows} == {"openvino/cpu": False, "torch/cpu": True}
    table = CliRunner().invoke(app, ["explain", "--model", "sa12", "--db", str(db)], env={"COLUMNS": "200"})
    assert "3.00 (75%)" in table.output and "20.00 ms timed noisy" in table.output
    assert "10.00 ms timed noisy" not in table.output and "noisy: other processes" in table.output
    missing = CliRunner().invoke(app, ["explain", "--model", "t8", "--db", str(db)])
    assert missing.exit_code == 2 and "no profiled valid run of t8" in missing.output


def test_breakdown_of_one_device_family(engine):
    save(engine, [10.0] * 5, model="sa12", target="litert/android:R58", op_profile=PROFILE)
    save(engine, [10.0] * 5, model="sa12", target="openvino/cpu", op_profile=PROFILE)
    assert [t["target"] for t in breakdown(engine, "sa12", 256, "reparam", "android").targets] == [
        "litert/android:R58"]
    assert breakdown(engine, "sa12", 256, "train", "cpu").targets == []
