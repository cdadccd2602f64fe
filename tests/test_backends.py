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
    session = backend.load(model, artifact, "cpu", threads=1)
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
