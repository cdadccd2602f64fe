"""Each CPU backend exports t8 (both forms) and computes what torch computes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backends import BACKENDS
from harness.measure.worker import relative_error
from harness.protocol import PARITY_TOLERANCE as TOLERANCES
from harness.spec import ModelSpec

CPU_BACKENDS = [name for name, b in BACKENDS.items() if "cpu" in b.devices]


@pytest.mark.parametrize("form", ["reparam", "train"])
@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_export_and_parity(tmp_path, name, form):
    backend = BACKENDS[name]
    reason = backend.unavailable_reason("cpu")
    assert reason is None, f"{name} must be installed for the test suite: {reason}"
    model = ModelSpec("t8", 64, 1, form).build()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        reference = model(x).numpy()
    artifact = backend.export(model, x, tmp_path)
    if backend.artifact_name:
        assert artifact.exists()
        assert sum(f.stat().st_size for f in tmp_path.iterdir()) > 14_000_000  # t8's fp32 weights: ~16 MB
    options = {"example": x.numpy()} if backend.load_needs_example else {}  # torch-compile compiles for it
    if backend.cache_filled_by_load:
        options["compile_cache"] = tmp_path / "compile-cache"
    session = backend.load(model, artifact, "cpu", threads=1, **options)
    session.prepare(x.numpy())
    session.infer()
    max_abs, rel = relative_error(reference, session.output())
    assert rel <= TOLERANCES["fp32"]
    session.prepare(np.zeros_like(x.numpy()))  # a different input gives a different output
    session.infer()
    assert relative_error(reference, session.output())[1] > TOLERANCES["fp32"]


def test_openvino_ir_is_static_and_fp32(tmp_path):
    import openvino as ov

    model = ModelSpec("t8", 64).build()
    path = BACKENDS["openvino"].export(model, torch.randn(2, 3, 64, 64), tmp_path)
    ir = ov.Core().read_model(str(path))
    assert ir.inputs[0].get_partial_shape().is_static
    assert list(ir.inputs[0].get_shape()) == [2, 3, 64, 64]
    assert {c.get_element_type().get_type_name() for c in ir.get_ops() if c.get_type_name() == "Constant"} \
        .isdisjoint({"f16"})


def test_unknown_device_reasons_are_one_line():
    for backend in BACKENDS.values():
        for device in backend.devices:
            reason = backend.unavailable_reason(device)
            assert reason is None or ("\n" not in reason and reason)


@pytest.mark.skipif(not __import__("backends.openvino_backend", fromlist=["x"]).cpu_has_bf16(),
                    reason="this CPU has no bf16 instructions (AVX512-BF16 or AMX)")
def test_openvino_bf16_runs_bf16_and_says_so(tmp_path):
    model = ModelSpec("sa12", 64).build()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        reference = model(x).numpy()
    backend = BACKENDS["openvino"]
    path = backend.export(model, x, tmp_path)
    for precision, runtime, low, high in (("fp32", "f32", 0, 1e-5), ("bf16", "bf16", 1e-4, TOLERANCES["bf16"])):
        session = backend.load(model, path, "cpu", 1, precision)
        session.prepare(x.numpy())
        session.infer()
        assert session.facts() == {"runtime_precision": runtime}
        assert low <= relative_error(reference, session.output())[1] <= high  # bf16 really is bf16


def test_bf16_is_offered_only_where_the_cpu_has_it(monkeypatch):
    from backends import openvino_backend
    from harness.measure import targets as devices

    monkeypatch.setattr(openvino_backend, "cpu_capabilities", lambda: ["FP32", "INT8", "BIN", "EXPORT_IMPORT"])
    targets, skipped = devices.plan_targets("cpu", ["openvino", "onnxruntime"], precision="bf16")
    reasons = {t.name: reason for t, reason in skipped}
    assert targets == [] and reasons["openvino/cpu"] == ("this CPU does not compute bf16 (OpenVINO's CPU plugin "
                                                         "lists FP32, INT8, BIN, EXPORT_IMPORT)")
    assert reasons["onnxruntime/cpu"] == "no bf16 export (it offers fp32, int8)"


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_profiling_copy_replaces_the_timed_one(tmp_path, name):
    """A runtime that profiles through a second copy of the model lets the timed copy go first (two side by side
    held the weights twice: the peak of a cold sweep), and what follows (the agreement) runs through the new one."""
    import gc
    import weakref

    backend = BACKENDS[name]
    model = ModelSpec("t8", 64).build()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        reference = model(x).numpy()
    session = backend.load(model, backend.export(model, x, tmp_path), "cpu", threads=1)
    session.prepare(x.numpy())
    session.infer()
    timed = weakref.ref(session.session if name == "onnxruntime" else session.compiled)
    rows = session.profile(2)
    gc.collect()
    assert rows and sum(r["total_ms"] for r in rows) > 0
    assert timed() is None, "the timed copy is still alive beside the profiling one"
    session.prepare(np.zeros_like(x.numpy()))
    session.infer()
    session.prepare(x.numpy())
    session.infer()
    assert relative_error(reference, session.output())[1] <= TOLERANCES["fp32"]


def test_onnx_weights_beside_the_graph_but_inline_for_ai_hub(tmp_path):
    """ONNX Runtime's fp32 artifact keeps its weights in model.onnx.data (the inline export held them about five
    times over at its peak) and loads from there; AI Hub uploads one file, so its export keeps them inline."""
    from backends.aihub import AIHubBackend

    model = ModelSpec("t8", 64).build()
    x = torch.randn(1, 3, 64, 64)
    (tmp_path / "ort").mkdir()
    (tmp_path / "hub").mkdir()
    local = BACKENDS["onnxruntime"].export(model, x, tmp_path / "ort")
    assert local.stat().st_size < 1_000_000 < 14_000_000 < (tmp_path / "ort" / "model.onnx.data").stat().st_size
    session = BACKENDS["onnxruntime"].load(model, local, "cpu", threads=1)
    session.prepare(x.numpy())
    session.infer()
    with torch.inference_mode():
        assert relative_error(model(x).numpy(), session.output())[1] <= TOLERANCES["fp32"]
    uploaded = AIHubBackend("aihub-onnx").export(model, x, tmp_path / "hub")
    assert [p.name for p in (tmp_path / "hub").iterdir()] == ["model.onnx"]
    assert uploaded.stat().st_size > 14_000_000


def test_litert_lazy_constants_convert_the_same_graph(tmp_path):
    """LiteRT's fp32 export converts with constants handled lazily (0.3 GB less at ma36's peak); the graph is the
    one the default conversion makes: the same operators in the same order, the same output."""
    import litert_torch
    from ai_edge_litert.interpreter import Interpreter

    model = ModelSpec("t8", 64).build().eval()
    x = torch.randn(1, 3, 64, 64)
    ours = BACKENDS["litert"].export(model, x, tmp_path)
    litert_torch.convert(model, (x,)).export(str(tmp_path / "default.tflite"))
    found = {}
    for name, path in (("ours", ours), ("default", tmp_path / "default.tflite")):
        interpreter = Interpreter(str(path))
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.numpy())
        interpreter.invoke()
        found[name] = ([op["op_name"] for op in interpreter._get_ops_details()],
                       interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy())
    assert found["ours"][0] == found["default"][0] and len(found["ours"][0]) > 50
    np.testing.assert_array_equal(found["ours"][1], found["default"][1])
