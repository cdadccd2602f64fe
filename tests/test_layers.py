"""`harness layers`: a model split into its distinct layers, each exported and timed alone like a whole
model, stored under its signature; the table, the sum against the whole model, the outliers."""
from __future__ import annotations

import json
import shlex

import pytest
import torch
from helpers import PHONE, fake_phone
from typer.testing import CliRunner

from backends import adb
from harness import store
from harness.analysis.layers import LayerRow, LayerTable
from harness.cli import app
from harness.measure import layers
from harness.opclass import OVERHEAD_SIGNATURE, signature_class
from harness.spec import ModelSpec

T8_FFN_DW7X7 = {  # T8's ConvFFN depthwise 7x7 convolutions: 2, 2, 4, 2 blocks per stage (the issue's weights)
    "dwconv7x7+bn s1 g48 48->48 @1x48x64x64": 2, "dwconv7x7+bn s1 g96 96->96 @1x96x32x32": 2,
    "dwconv7x7+bn s1 g192 192->192 @1x192x16x16": 4, "dwconv7x7+bn s1 g384 384->384 @1x384x8x8": 2}


def invoke(*args, **kwargs):
    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)


def test_t8_splits_into_its_distinct_layers_with_counts():
    spec = ModelSpec("t8")
    found = {layer.signature: layer for layer in layers.distinct_layers(spec)}
    assert {s: found[s].count for s in T8_FFN_DW7X7} == T8_FFN_DW7X7
    assert all(found[s].op_class == "conv_dw_7x7" for s in T8_FFN_DW7X7)
    assert found["linear 768->1000 @1x768"].count == 1
    # every unit call is counted once: as many as the model makes
    model = spec.build()
    units = layers._units(model)
    calls = layers._inputs(model, units, torch.randn(1, 3, 256, 256))
    assert sum(layer.count for layer in found.values()) == sum(len(c) for c in calls.values()) == len(units)


def test_a_layer_alone_computes_what_it_computes_inside_the_model():
    spec = ModelSpec("sa12", 64)
    attention = next(layer for layer in layers.distinct_layers(spec) if layer.op_class == "attention_block")
    module, x = layers.layer_model(spec, attention.path)
    assert tuple(x.shape) == attention.input_shape
    with torch.inference_mode():
        assert module(x).shape[1:] == x.shape[1:]
    probe, tiny = layers.layer_model(spec, layers.OVERHEAD)
    assert tuple(tiny.shape) == (1, 1, 8, 8) and probe(tiny).shape == tiny.shape
    with pytest.raises(ValueError, match="has no layer 'nowhere'"):
        layers.layer_model(spec, "nowhere")


@pytest.mark.parametrize("signature, expected", [
    ("dwconv7x7+bn s1 g48 48->48 @1x48x64x64", "conv_dw_7x7"), ("dwconv3x3 s1 g64 64->64 @1x64x32x32", "conv_dw_3x3"),
    ("conv1x1 s1 g1 48->144 @1x48x64x64", "conv_pointwise"), ("grouped conv7x7 s2 g24 48->96 @1x48x64x64",
                                                             "conv_dense"),
    ("linear 768->1000 @1x768", "linear"), ("Attention @1x512x8x8", "attention_block"),
    (OVERHEAD_SIGNATURE, "overhead"),
])
def test_a_stored_signature_gives_back_its_op_class(signature, expected):
    assert signature_class(signature) == expected


def test_the_table_subtracts_overhead_counts_and_names_the_outliers():
    table = LayerTable(targets=["litert/cpu", "onnxruntime/cpu"], overhead={"litert/cpu": 0.05, "onnxruntime/cpu": 0.1},
                       whole_ms={"litert/cpu": 20.0, "onnxruntime/cpu": 5.0})
    dw = LayerRow("dwconv7x7+bn s1 g48 48->48 @1x48x64x64", "conv_dw_7x7", 2, 9_000_000,
                  {"litert/cpu": 4.85, "onnxruntime/cpu": 0.55})
    pw = LayerRow("conv1x1 s1 g1 48->144 @1x48x64x64", "conv_pointwise", 4, 60_000_000,
                  {"litert/cpu": 1.05, "onnxruntime/cpu": 0.9})
    table.rows = [dw, pw]
    assert table.total_ms(dw, "litert/cpu") == pytest.approx(9.6) and table.sum_ms("litert/cpu") == pytest.approx(13.6)
    assert table.ratio_to_whole("litert/cpu") == pytest.approx(0.68)
    (outlier,) = table.outliers()
    assert (outlier.target, outlier.best_target, outlier.ratio) == ("litert/cpu", "onnxruntime/cpu", pytest.approx(10.67,
                                                                                                                  abs=0.01))
    assert outlier.share == pytest.approx(9.6 / 13.6) and outlier.gflops == pytest.approx(9_000_000 / 4.8e6)


def test_layers_of_t8_are_timed_stored_and_shown_beside_the_whole_model(db_file):
    ran = invoke("run", "--device", "cpu", "--backend", "torch", "--backend", "onnxruntime", "--model", "t8",
                 "--resolution", "64", "--min-time", "0.05", "--min-iterations", "5", "--warmup", "1", "--profile", "0",
                 "--db", db_file)
    assert ran.exit_code == 0, ran.output
    result = invoke("layers", "--device", "cpu", "--backend", "torch", "--backend", "onnxruntime", "--model", "t8",
                    "--resolution", "64", "--only", "dwconv7x7+bn", "--min-time", "0.02", "--min-iterations", "5",
                    "--warmup", "1", "--db", db_file, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output[result.output.index("[\n"):])
    dw = {(r["layer"], r["target"]): r for r in rows if r["op_class"] == "conv_dw_7x7"}
    assert {layer for layer, _ in dw} == {"dwconv7x7+bn s1 g48 48->48 @1x48x16x16", "dwconv7x7+bn s1 g96 96->96 @1x96x8x8",
                                          "dwconv7x7+bn s1 g192 192->192 @1x192x4x4",
                                          "dwconv7x7+bn s1 g384 384->384 @1x384x2x2"} and len(dw) == 8
    assert all(r["count"] in (2, 4) and r["ms_per_call"] > 0 for r in dw.values())
    whole = {r["target"]: r for r in rows if r["layer"] == "<whole model>"}
    assert set(whole) == {"torch/cpu", "onnxruntime/cpu"} and all(r["ms_per_call"] > 0 for r in whole.values())
    overhead = {r["target"]: r["ms_per_call"] for r in rows if r["layer"] == "<overhead per call>"}
    assert all(v is not None and v > 0 for v in overhead.values())
    engine = store.open_engine(str(db_file))
    _, valid = store.read_only_query(engine, "SELECT COUNT(*) FROM latest_valid_runs WHERE NOT published")
    _, layer_runs = store.read_only_query(engine, "SELECT COUNT(*), SUM(layer_count) FROM latest_layer_runs")
    assert valid == [(2,)] and layer_runs == [(10, 20)]  # 4 layers + the probe on 2 targets; 2+2+4+2 per target
    table = " ".join(invoke("layers", "--device", "cpu", "--model", "t8", "--resolution", "64", "--show", "--db",
                            db_file, env={"COLUMNS": "250"}).output.split())
    assert "sum / whole" in table and "runtime overhead per call" in table and "x4 =" in table


def test_a_layer_on_an_android_phone_is_its_own_tflite_run_by_benchmark_model(tmp_path, monkeypatch):
    """No phone here: a fake adb answers, benchmark_model's output is a real log; the per-layer .tflite
    is really exported and checked against torch on this host."""
    pytest.importorskip("litert_torch", reason="LiteRT export needs litert-torch")
    from harness.measure.worker import measure_job
    from harness.protocol import Job, RunResult, TimingPolicy
    from harness.spec import Target

    calls = fake_phone(monkeypatch, tmp_path)
    spec = ModelSpec("t8", 64)
    dw = next(layer for layer in layers.distinct_layers(spec) if layer.op_class == "conv_dw_7x7")
    job = Job(spec, Target("litert", f"android:{PHONE}", "delegate=xnnpack"), 4,
              TimingPolicy(warmup_iterations=5, warmup_seconds=0.5, min_iterations=20, min_seconds=1),
              str(tmp_path / "cache"), layer=dw.path, layer_signature=dw.signature, layer_count=dw.count)
    result = RunResult(status="error")
    measure_job(job, result)
    assert result.status == "ok", result.error
    assert result.artifact_path.endswith(".tflite") and result.environment["layer_path"] == dw.path
    assert result.environment["layer_flops"] > 0 and result.class_flops == {}
    key = result.artifact_key
    run = next(shlex.split(c[4]) for c in calls if c[3:4] == ["shell"] and "--graph" in c[4])
    assert run[1:3] == [f"--graph={adb.REMOTE_DIR}/{key}.tflite", "--num_threads=4"]
    assert result.summary.count == 251  # the tool's statistics, from its real log
