"""Baselines, op classes, claims and explain: the parts of the investigation that turn runs into answers."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from harness import claims, storage
from harness.cli import app
from harness.opclass import op_class, xnnpack_class
from harness.spec import ModelSpec, canonical_model
from harness.stats import summarize

HOST = {"hostname": "h", "cpu_model": "cpu", "logical_cores": 2, "os": "Linux", "machine": "x86_64"}


@pytest.mark.parametrize("op_type, kernel, depthwise, expected", [
    ("GroupConvolution", 7, True, "conv_dw_7x7"), ("Conv2d", 3, True, "conv_dw_3x3"),
    ("Conv", 5, True, "conv_dw_other"), ("FusedConv", 1, False, "conv_pointwise"),
    ("Convolution", 3, False, "conv_dense"), ("FullyConnected", None, False, "linear"),
    ("Linear", None, False, "linear"), ("MatMul", None, False, "attention_matmul"),
    ("MatMul (constant weights)", None, False, "linear"), ("FusedMatMul (constant weights)", None, False, "linear"),
    ("Attention (SDPA and reshapes)", None, False, "attention_matmul"), ("Softmax", None, False, "softmax"),
    ("BatchNormalization", None, False, "norm"), ("Gelu", None, False, "activation"),
    ("Sigmoid", None, False, "activation"), ("Add", None, False, "elementwise"),
    ("Subgraph", None, False, "elementwise"), ("ReduceMean", None, False, "pool"),
    ("Transpose", None, False, "reshape_transpose"), ("Reorder", None, False, "reshape_transpose"),
    ("Dropout", None, False, "other"), ("AttentionBlock (glue: adds, scales, reshapes)", None, False, "elementwise"),
])
def test_op_classes(op_type, kernel, depthwise, expected):
    assert op_class(op_type, kernel, depthwise) == expected


def test_xnnpack_classes():
    assert xnnpack_class("Convolution (NHWC, F32) DWConv") == "conv_dw_other"
    assert xnnpack_class("Convolution (NHWC, F32) GEMM") == "conv_pointwise"
    assert xnnpack_class("Convolution (NHWC, F32) IGEMM") == "conv_dense"
    assert xnnpack_class("Fully Connected (NC, F32) GEMM") == "linear"


def test_baseline_names():
    assert canonical_model("mobileone_s4") == "timm:mobileone_s4"
    assert canonical_model("timm:resnet18") == "timm:resnet18"
    assert canonical_model("FastViT_SA12") == "sa12"
    with pytest.raises(ValueError, match="a baseline \\(mobileone_s4, convnext_base, caformer_s18"):
        canonical_model("vit_tiny")


def test_mobileone_baseline_fuses_and_keeps_its_outputs():
    train = ModelSpec("mobileone_s4", 64, form="train").build()
    fused = ModelSpec("mobileone_s4", 64, form="reparam").build()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        a, b = train(x), fused(x)
    assert ((a - b).abs().max() / a.abs().max()).item() < 1e-4
    assert sum(p.numel() for p in fused.parameters()) < sum(p.numel() for p in train.parameters())


def _save(engine, model, form, resolution, target, samples_ms, status="ok"):
    samples = [int(ms * 1e6) for ms in samples_ms]
    result = {"status": status, "samples_ns": samples,
              "op_profile": [{"op_name": "a", "op_type": "GroupConvolution", "op_class": "conv_dw_7x7", "calls": 6,
                              "total_ms": 1.0},
                             {"op_name": "b", "op_type": "Convolution", "op_class": "conv_pointwise", "calls": 20,
                              "total_ms": 3.0}]}
    backend, device = target.split("/")
    return storage.save_run(engine, sweep_id=None, host=HOST,
                            spec={"model": model, "resolution": resolution, "batch": 1, "form": form,
                                  "weights": "random:0"},
                            target={"backend": backend, "device": device}, threads=2, result=result,
                            summary=summarize(samples).as_dict())


def test_claim_verdicts(tmp_path):
    engine = storage.open_engine(str(tmp_path / "r.db"))
    rng = np.random.default_rng(0)
    noise = lambda ms: ms * (1 + 0.01 * rng.standard_normal(60))  # noqa: E731
    _save(engine, "s12", "reparam", 256, "openvino/cpu", noise(10.0))
    _save(engine, "timm:mobileone_s4", "reparam", 224, "openvino/cpu", noise(15.0))  # 1.5x: holds
    _save(engine, "s12", "reparam", 256, "torch/cpu", noise(10.0))
    _save(engine, "timm:mobileone_s4", "reparam", 224, "torch/cpu", noise(11.0))  # 1.1x < 1.263: does not
    _save(engine, "s12", "train", 256, "torch/cpu", noise(10.0))  # reparam no faster: does not hold
    _save(engine, "timm:mobileone_s4", "reparam", 256, "litert/cpu", noise(5.0))  # wrong resolution
    by_key = {(c.claim.key, c.target): c for c in claims.check_all(engine)}
    held = by_key[("s12_vs_mobileone_s4", "openvino/cpu")]
    assert held.verdict == "holds" and held.low > 1.4 and held.speedup == pytest.approx(1.5, rel=0.02)
    assert by_key[("s12_vs_mobileone_s4", "torch/cpu")].verdict == "does not hold"
    assert by_key[("reparam_s12", "torch/cpu")].verdict == "does not hold"
    assert by_key[("reparam_s12", "openvino/cpu")].verdict == "not enough data"
    assert ("s12_vs_mobileone_s4", "litert/cpu") not in by_key  # the 256px MobileOne run is not the claim's
    assert by_key[("ma36_vs_convnext_base", "—")].verdict == "not enough data"
    assert claims.verdict(None, None, 2.1, 1.9) == "holds" and claims.verdict(None, None, 1.2, 1.9) == "does not hold"

    result = CliRunner().invoke(app, ["claims", "--json", "--db", str(tmp_path / "r.db")])
    rows = json.loads(result.output)
    assert {r["claim"] for r in rows} == {c.key for c in claims.CLAIMS}


def test_explain_breakdown(tmp_path):
    db = tmp_path / "r.db"
    engine = storage.open_engine(str(db))
    _save(engine, "sa12", "reparam", 256, "openvino/cpu", [10.0] * 5)
    _save(engine, "sa12", "reparam", 256, "torch/cpu", [20.0] * 5)
    result = CliRunner().invoke(app, ["explain", "--model", "sa12", "--json", "--db", str(db)])
    data = json.loads(result.output)
    assert [t["target"] for t in data["targets"]] == ["openvino/cpu", "torch/cpu"]
    assert data["rows"][0] == {"op_class": "conv_pointwise", "cells": [{"ms": 3.0, "share": 0.75}] * 2}
    missing = CliRunner().invoke(app, ["explain", "--model", "t8", "--db", str(db)])
    assert missing.exit_code == 2 and "no profiled valid run of t8" in missing.output


@pytest.mark.parametrize("model", ["sa12", "timm:caformer_s18", "t8"])
def test_class_flops_add_up_to_the_models_macs(model):
    import fastvit
    from harness.roofline import class_flops

    net = ModelSpec(model, 64).build()
    flops = class_flops(net, torch.zeros(1, 3, 64, 64))
    assert sum(flops.values()) == 2 * fastvit.count_macs(net, 64)
    assert flops["conv_pointwise"] > 0
    if model != "t8":
        assert 0 < flops["attention_matmul"] < flops["linear"]


def test_roofline_views(tmp_path):
    engine = storage.open_engine(str(tmp_path / "r.db"))
    run_id = _save(engine, "sa12", "reparam", 256, "openvino/cpu", [10.0] * 5)
    with storage.Session(engine) as session, session.begin():
        storage.save_model_flops(session, {"model": "sa12", "resolution": 256, "batch": 1, "form": "reparam"},
                                 {"conv_dw_7x7": 20_000_000, "conv_pointwise": 300_000_000})
    for target, gflops in (("openvino/cpu", 100.0), ("torch/cpu", 50.0)):
        storage.save_peak(engine, host=HOST, target=target, threads=2, gflops=gflops, gemm_size=1024)
    _, rows = storage.read_only_query(engine, "SELECT run_id, achieved_gflops, peak_gflops, percent_of_peak "
                                              "FROM roofline")
    assert rows == [(run_id, pytest.approx(32.0), 100.0, pytest.approx(32.0))]  # 0.32 GFLOP in 10 ms; best roof
    _, rows = storage.read_only_query(engine, "SELECT op_class, ms, achieved_gflops, percent_of_peak "
                                              "FROM roofline_by_class ORDER BY op_class")
    assert rows == [("conv_dw_7x7", 1.0, pytest.approx(20.0), pytest.approx(20.0)),
                    ("conv_pointwise", 3.0, pytest.approx(100.0), pytest.approx(100.0))]


def test_peak_command_stores_a_gemm_throughput(tmp_path):
    db = tmp_path / "r.db"
    result = CliRunner().invoke(app, ["peak", "--size", "64", "--backend", "torch", "--db", str(db),
                                      "--cache", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    _, rows = storage.read_only_query(storage.open_engine(str(db)), "SELECT target, gflops, gemm_size FROM host_peaks")
    assert rows[0][0] == "torch/cpu" and rows[0][1] > 0.1 and rows[0][2] == 64


def test_claims_use_every_repeat_of_the_latest_sweep(tmp_path):
    engine = storage.open_engine(str(tmp_path / "r.db"))
    old = storage.start_sweep(engine, "old")
    new = storage.start_sweep(engine, "new")

    def save(sweep, form, ms):
        samples = [int(ms * 1e6)] * 5
        return storage.save_run(engine, sweep_id=sweep, host=HOST,
                                spec={"model": "t8", "resolution": 256, "batch": 1, "form": form,
                                      "weights": "random:0"},
                                target={"backend": "torch", "device": "cpu"}, threads=2,
                                result={"status": "ok", "samples_ns": samples}, summary=summarize(samples).as_dict())

    save(old, "reparam", 100.0)  # an older sweep is ignored once a newer one timed the same spec
    save(old, "train", 10.0)
    for reparam_ms, train_ms in ((10.0, 14.0), (12.0, 13.0), (11.0, 16.0)):  # processes disagree a lot
        save(new, "reparam", reparam_ms)
        save(new, "train", train_ms)
    check = next(c for c in claims.check_all(engine) if c.claim.key == "reparam_t8")
    assert check.runs == (3, 3)
    assert check.speedup == pytest.approx(14.0 / 11.0)
    assert check.low < 1.1 < check.high  # the interval spans the process-to-process spread
    single = claims.compare([np.full(5, 10.0)], [np.full(5, 14.0)])
    assert single == (1.4, 1.4, 1.4)
