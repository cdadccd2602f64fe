"""`harness export` writes every artifact kind for t8 and sa12; the LiteRT and Core ML ones are
checked for what they contain (parity on this host where a runtime exists here)."""
from __future__ import annotations

import platform

import numpy as np
import pytest
import torch

from backends import BACKENDS
from harness.measure.artifacts import model_artifact
from harness.spec import example_input
from harness.measure.worker import relative_error
from harness.spec import ModelSpec

ARTIFACTS = {"onnxruntime": "model.onnx", "openvino": "model.xml", "litert": "model.tflite",
             "coreml": "model.mlpackage"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("backend", list(ARTIFACTS))
@pytest.mark.parametrize("model", ["t8", "sa12"])
def test_every_artifact_kind_for_t8_and_sa12(cache, model, backend):
    spec = ModelSpec(model)
    be = BACKENDS[backend]
    precision = "fp16" if backend == "coreml" else "fp32"
    path, cached = model_artifact(spec, be, precision, spec.build(), example_input(spec), cache)
    assert path.name == ARTIFACTS[backend] and path.exists() and not cached
    size = sum(f.stat().st_size for f in path.parent.rglob("*") if f.is_file())
    params_mb = {"t8": 4.0, "sa12": 11.5}[model] * (2 if precision == "fp16" else 4)
    assert size > 0.9 * params_mb * 1e6  # all weights are in there
    assert model_artifact(spec, be, precision, None, None, cache) == (path, True)  # second time: cache


@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-4), ("fp16", 2e-2)])
def test_litert_host_parity_and_layout(tmp_path, precision, tolerance):
    be = BACKENDS["litert"]
    model = ModelSpec("sa12", 64).build()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        reference = model(x).numpy()
    path = be.export(model, x, tmp_path, precision)
    session = be.load(model, path, "cpu", 1)
    assert list(session.interpreter.get_input_details()[0]["shape"]) == [1, 3, 64, 64]  # NCHW kept
    session.prepare(x.numpy())
    assert session.infer() is None
    rel = relative_error(reference, session.output())[1]
    assert rel <= tolerance
    if precision == "fp16":
        assert rel > 1e-6  # fp16 weights really are fp16


def _coreml_ops(spec) -> set[str]:
    ops = set()
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            ops.update(op.type for op in block.operations)
    return ops


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_coreml_package_spec(tmp_path, precision):
    ct = pytest.importorskip("coremltools")
    be = BACKENDS["coreml"]
    path = be.export(ModelSpec("sa12", 64).build(), torch.randn(1, 3, 64, 64), tmp_path, precision)
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    (inp,), (out,) = spec.description.input, spec.description.output
    float32 = ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32
    assert (inp.name, list(inp.type.multiArrayType.shape), inp.type.multiArrayType.dataType) == (
        "input", [1, 3, 64, 64], float32)
    assert (out.name, list(out.type.multiArrayType.shape)) == ("logits", [1, 1000])
    ops = _coreml_ops(spec)
    assert {"conv", "linear", "gelu", "matmul", "softmax"} <= ops  # sa12's attention stage is in there
    assert ("cast" in ops) == (precision == "fp16")  # fp16 compute: fp32 I/O cast in and out


@pytest.mark.skipif(platform.system() != "Darwin", reason="Core ML predictions need macOS")
@pytest.mark.parametrize("device", ["mac:cpu", "mac:all"])
def test_coreml_predicts_on_macos(tmp_path, device):
    be = BACKENDS["coreml"]
    model = ModelSpec("t8", 64).build()
    x = torch.randn(1, 3, 64, 64)
    path = be.export(model, x, tmp_path, "fp32")
    session = be.load(model, path, device, 1)
    session.prepare(x.numpy())
    session.infer()
    with torch.inference_mode():
        assert relative_error(model(x).numpy(), session.output())[1] <= 1e-3
    assert isinstance(session.output(), np.ndarray)
