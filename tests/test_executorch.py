"""ExecuTorch: the .pte computes what torch computes, --threads reaches its threadpool, the delegates'
coverage is recorded, and an ETDump profile names the layer behind each XNNPACK operator."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from helpers import rel_diff

from backends import BACKENDS
from backends.executorch_backend import SIDECAR, profile_rows
from harness.measure.artifacts import coverage_of
from harness.spec import example_input
from harness.opclass import classify_rows
from harness.spec import ModelSpec


@pytest.fixture(scope="module")
def t8_program(tmp_path_factory):
    """t8 at 64 px lowered to XNNPACK: (model, input, .pte path)."""
    spec = ModelSpec("t8", 64)
    model, x = spec.build(), example_input(spec)
    backend = BACKENDS["executorch"]
    assert backend.unavailable_reason("cpu") is None, "executorch must be installed for the test suite"
    return model, x, backend.export(model, x, tmp_path_factory.mktemp("et"))


def test_the_program_computes_what_torch_computes(t8_program):
    model, x, path = t8_program
    from executorch.extension.pybindings import portable_lib

    session = BACKENDS["executorch"].load(model, path, "cpu", threads=2)
    assert portable_lib._threadpool_get_thread_count() == 2  # --threads, not the threadpool's 1
    session.prepare(x.numpy())
    assert session.infer() is None
    with torch.inference_mode():
        assert rel_diff(model(x), torch.from_numpy(session.output())) < 1e-4
    session.prepare(torch.zeros_like(x).numpy())
    session.infer()
    with torch.inference_mode():
        assert rel_diff(model(x), torch.from_numpy(session.output())) > 1e-3  # it really ran on the new input


def test_xnnpack_coverage_is_recorded(t8_program):
    _, _, path = t8_program
    rows = coverage_of(BACKENDS["executorch"], path)
    by_class = {}
    for row in rows:
        assert row.partitioner == "xnnpack"
        by_class.setdefault(row.op_class, [0, 0, 0])
        by_class[row.op_class][0] += row.delegated_nodes
        by_class[row.op_class][1] += row.portable_nodes
        by_class[row.op_class][2] += row.delegated_flops
    # t8: 13 large-kernel depthwise convs (10 ConvFFN, 3 patch embeddings), 26 pointwise, all delegated
    assert by_class["conv_dw_7x7"][:2] == [13, 0] and by_class["conv_pointwise"][:2] == [26, 0]
    assert all(by_class[c][2] > 0 for c in ("conv_dw_7x7", "conv_pointwise", "conv_dense", "linear"))
    layers = json.loads((path.parent / SIDECAR).read_text())["layers"]
    assert sum(layer["kind"] == "conv" for layer in layers) == 26 and sum(layer["kind"] == "fc" for layer in layers) == 27


def test_an_etdump_profile_names_each_layer(t8_program):
    model, x, path = t8_program
    session = BACKENDS["executorch"].load(model, path, "cpu", threads=1)
    session.prepare(x.numpy())
    rows = classify_rows(session.profile(3))
    total = sum(r.total_ms for r in rows)
    share = {}
    for r in rows:
        share[r.op_class] = share.get(r.op_class, 0.0) + r.total_ms / total
    assert share.get("other", 0.0) < 0.2
    assert {r.op_class for r in rows} >= {"conv_dw_7x7", "conv_dw_3x3", "conv_pointwise", "conv_dense", "linear"}
    # the question the profile answers: which XNNPACK operator runs FastViT's 7x7 depthwise convolutions
    assert len({r.op_type for r in rows if r.op_class == "conv_dw_7x7"}) == 1
    assert sum(r.op_class == "conv_dw_7x7" for r in rows) == 13


def test_unmatched_profiles_keep_kernels_unknown():
    events = [SimpleNamespace(name="Convolution (NHWC, F32) IGEMM #1", perf_data=SimpleNamespace(avg=2.0)),
              SimpleNamespace(name="DELEGATE_CALL", perf_data=SimpleNamespace(avg=2.5)),
              SimpleNamespace(name="Fully Connected (NC, F32) GEMM #1", perf_data=SimpleNamespace(avg=1.0))]
    matched = profile_rows(events, [{"kind": "conv", "kernel": 7, "depthwise": True},
                                    {"kind": "fc", "kernel": 1, "depthwise": False}])
    assert [(r["op_type"], r["kernel"], r["depthwise"]) for r in matched] == [
        ("Convolution (NHWC, F32) IGEMM", 7, True), ("Fully Connected (NC, F32) GEMM", 1, False)]  # no wrapper
    unmatched = profile_rows(events, [{"kind": "conv", "kernel": 7, "depthwise": True}])  # one fc layer short
    assert [r["kernel"] for r in unmatched] == [None, None]


def test_core_ml_lowering_is_made_here_and_runs_only_on_a_mac(tmp_path):
    spec = ModelSpec("t8", 64)
    backend = BACKENDS["executorch-coreml"]
    path = backend.export(spec.build(), example_input(spec), tmp_path)
    rows = coverage_of(backend, path)
    assert {r.partitioner for r in rows} == {"coreml"} and sum(r.portable_nodes for r in rows) == 0
    reason = backend.unavailable_reason("mac:all")
    import platform

    assert (reason is None) == (platform.system() == "Darwin") or "no Core ML backend" in (reason or "")
