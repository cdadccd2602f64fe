"""The precision axis: real photographs for calibration and agreement, int8 artifacts that are really quantized
(inspected in each runtime's own format), what each runtime computes in int8, the agreement floor, and the
reports that put precision beside latency."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import HOST, invoke, save, timed_result

from backends import BACKENDS
from harness import store
from harness.measure import images
from harness.measure.agreement import agreement
from harness.measure.worker import check_agreement, check_parity
from harness.protocol import AGREEMENT_FLOOR, PARITY_TOLERANCE, Agreement, RunResult
from harness.spec import ModelSpec, Target

RES = 64  # small inputs: every export below stays within seconds


@pytest.fixture(scope="module")
def t8():
    return ModelSpec("t8", RES).build()


@pytest.fixture(scope="module")
def calibration():
    return images.calibration_set(RES)


@pytest.fixture(scope="module")
def held_out():
    return images.held_out_set(RES)


def example() -> torch.Tensor:
    return torch.randn(1, 3, RES, RES, generator=torch.Generator().manual_seed(0))


def export(tmp_path_factory, name: str, model, calibration, precision: str = "int8") -> Path:
    out = tmp_path_factory.mktemp(f"{name}-{precision}")
    return BACKENDS[name].export(model, example(), out, precision, calibration=calibration.batches(1))


def low_share(rows: list[dict]) -> float:
    low = sum(r["low_flops"] for r in rows)
    return low / (low + sum(r["float_flops"] for r in rows))


# --- the photographs ------------------------------------------------------------------------------

def test_calibration_and_held_out_are_real_disjoint_photographs(calibration, held_out):
    assert calibration.images.shape == (4 * len(calibration.names), 3, RES, RES)  # four views of each photo
    assert held_out.images.shape == (len(held_out.names), 3, RES, RES) and len(held_out.names) >= 8
    assert not set(calibration.names) & set(held_out.names)
    # normalised photographs, not noise: natural images are smooth (neighbouring pixels correlate strongly)
    pixels = held_out.images[:, 0]
    correlation = np.corrcoef(pixels[:, :, :-1].ravel(), pixels[:, :, 1:].ravel())[0, 1]
    assert correlation > 0.8 and abs(float(held_out.images.mean())) < 1.5
    assert calibration.identity != held_out.identity and calibration.identity.startswith("sha256:")
    assert images.calibration_set(RES).identity == calibration.identity  # stable: part of the cache key


def test_a_calibration_folder_is_its_own_set(tmp_path, calibration):
    for name in ("chelsea.png", "coffee.png"):
        shutil.copy(images.package_dir("skimage") / name, tmp_path / name)
    found = images.calibration_set(RES, tmp_path)
    assert found.names == ("chelsea.png", "coffee.png") and found.images.shape == (2, 3, RES, RES)
    assert found.identity != calibration.identity
    (tmp_path / "coffee.png").write_bytes((tmp_path / "chelsea.png").read_bytes())
    assert images.calibration_set(RES, tmp_path).identity != found.identity  # the bytes, not only the names
    assert [len(b) for b in found.batches(3)] == [3]  # filled up from the start


@pytest.mark.parametrize("setup, expected", [
    (lambda d: None, "no images"),
    (lambda d: (d / "x.jpg").write_text("not a picture"), "is not an image this harness can read"),
])
def test_a_bad_calibration_folder_is_one_sentence(tmp_path, setup, expected):
    setup(tmp_path)
    with pytest.raises(images.ImageSetError, match=expected):
        images.calibration_set(RES, tmp_path)
    with pytest.raises(images.ImageSetError, match="not a folder"):
        images.calibration_set(RES, tmp_path / "missing")


def test_labelled_folder_gives_class_indices_in_sorted_order(tmp_path):
    for cls, name in (("n02", "coffee.png"), ("n01", "chelsea.png"), ("n01", "rocket.jpg")):
        (tmp_path / cls).mkdir(exist_ok=True)
        shutil.copy(images.package_dir("skimage") / name, tmp_path / cls / name)
    found, labels = images.labelled_set(tmp_path, RES)
    assert list(labels) == [0, 0, 1] and found.images.shape[0] == 3
    with pytest.raises(images.ImageSetError, match="one sub-folder of images per class"):
        images.labelled_set(tmp_path / "n01", RES)


# --- each runtime's int8 artifact is really quantized ------------------------------------------------

def test_onnxruntime_int8_is_a_qdq_graph_with_int8_weights(tmp_path_factory, t8, calibration):
    import onnx

    path = export(tmp_path_factory, "onnxruntime", t8, calibration)
    graph = onnx.load(str(path)).graph
    ops = Counter(node.op_type for node in graph.node)
    assert ops["QuantizeLinear"] > 50 and ops["DequantizeLinear"] > ops["QuantizeLinear"]
    int8 = [i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4]
    assert len(int8) == ops["Conv"]  # every convolution's weights stored in int8, per channel
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]  # intermediates removed
    rows = BACKENDS["onnxruntime"].precision_coverage(path)
    convs = [r for r in rows if r["op_type"] == "Conv"]
    assert sum(r["low_nodes"] for r in convs) == ops["Conv"] and low_share(rows) == 1.0
    erf = next(r for r in rows if r["op_type"] == "Erf")  # GELU's erf has no integer kernel: float
    assert erf["low_nodes"] == 0 and erf["float_nodes"] == 17
    # ORT's profile names the fused integer kernels, each classed by its own weights (input 3 of QLinearConv)
    from harness.opclass import classify_rows

    session = BACKENDS["onnxruntime"].load(t8, path, "cpu", 1, "int8")
    session.prepare(example().numpy())
    profiled = classify_rows(session.profile(2))
    kernels = {(row.op_type, row.op_class) for row in profiled}
    assert ("QLinearConv", "conv_dw_7x7") in kernels and ("QLinearConv", "conv_pointwise") in kernels, kernels


def test_tensorrt_int8_qdq_is_symmetric(tmp_path, t8, calibration):
    import onnx
    from onnx import numpy_helper

    from backends.tensorrt_backend import builder_flags, tensorrt_qdq_onnx, trtexec_args

    path = tensorrt_qdq_onnx(t8, example(), tmp_path / "model.onnx", calibration.batches(1))
    graph = onnx.load(str(path)).graph
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    zero_points = [values[n.input[2]] for n in graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)  # TensorRT's explicit QDQ
    assert builder_flags("int8") == (["INT8", "FP16"], [])
    assert {"--int8", "--fp16"} <= set(trtexec_args("model.onnx", "int8"))
    assert BACKENDS["tensorrt"].precision_coverage(tmp_path / "model.engine")  # read from the QDQ beside it


def test_openvino_int8_ir_runs_its_convolutions_in_int8(tmp_path_factory, t8, calibration, held_out):
    path = export(tmp_path_factory, "openvino", t8, calibration)
    assert path.read_text().count('type="FakeQuantize"') > 40
    rows = BACKENDS["openvino"].precision_coverage(path)  # the CPU plugin's runtimePrecision per node
    convs = [r for r in rows if r["op_type"] == "Convolution"]
    assert sum(r["low_nodes"] for r in convs) > 40 and low_share(rows) > 0.95
    session = BACKENDS["openvino"].load(t8, path, "cpu", 1, "int8")
    found = agreement(session, t8, held_out, 1)
    assert found.cosine > AGREEMENT_FLOOR and found.images == len(held_out.names)


def test_litert_int8_has_int8_tensors_and_takes_int8_input(tmp_path_factory, t8, calibration, held_out):
    from ai_edge_litert.interpreter import Interpreter

    path = export(tmp_path_factory, "litert", t8, calibration)
    interpreter = Interpreter(model_path=str(path))
    types = Counter(t["dtype"] for t in interpreter.get_tensor_details())
    assert types[np.int8] > 100 and interpreter.get_input_details()[0]["dtype"] == np.int8
    rows = BACKENDS["litert"].precision_coverage(path)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D"} <= {r["op_type"] for r in rows if r["low_nodes"]}
    assert low_share(rows) == 1.0
    session = BACKENDS["litert"].load(t8, path, "cpu", 1, "int8")  # quantizes the float input itself
    found = agreement(session, t8, held_out, 1)
    assert found.cosine > AGREEMENT_FLOOR


def test_executorch_int8_runs_quantized_xnnpack_operators(tmp_path_factory, t8, calibration):
    path = export(tmp_path_factory, "executorch", t8, calibration)
    sidecar = json.loads((path.parent / "delegation.json").read_text())
    assert low_share(sidecar["precision"]) == 1.0
    session = BACKENDS["executorch"].load(t8, path, "cpu", 1, "int8")
    session.prepare(example().numpy())
    session.infer()
    operators = [row["op_type"] for row in session.profile(1)]
    quantized = [op for op in operators if "QC8" in op or "QS8" in op]  # XNNPACK's int8 kernels
    assert sum("Convolution" in op for op in quantized) >= 20, operators
    assert not any("Convolution" in op and "F32" in op for op in operators)


def test_coreml_int8_is_w8a8_built_on_any_os(tmp_path_factory, t8, calibration):
    pytest.importorskip("coremltools")
    path = export(tmp_path_factory, "coreml", t8, calibration)
    rows = BACKENDS["coreml"].precision_coverage(path)  # read from the saved ML program's protobuf
    convs = [r for r in rows if r["op_type"] == "conv"]
    assert sum(r["low_nodes"] for r in convs) == 52 and sum(r["float_nodes"] for r in convs) == 0
    gelu = next(r for r in rows if r["op_type"] == "gelu")
    assert gelu["low_nodes"] == 0  # activations between quantized convolutions compute in float16


def test_the_fp32_export_is_unquantized(tmp_path_factory, t8, calibration):
    path = BACKENDS["onnxruntime"].export(t8, example(), tmp_path_factory.mktemp("fp32"), "fp32")
    rows = BACKENDS["onnxruntime"].precision_coverage(path)
    assert low_share(rows) == 0.0


def test_int8_without_calibration_is_refused(tmp_path, t8):
    with pytest.raises(ValueError, match="needs calibration images"):
        BACKENDS["onnxruntime"].export(t8, example(), tmp_path, "int8")


# --- agreement and the floor ---------------------------------------------------------------------------

def test_fp32_agrees_with_itself_and_noise_does_not(t8, held_out):
    session = BACKENDS["torch"].load(t8, None, "cpu", 1)
    same = agreement(session, t8, held_out, 2)  # batch 2 over 8+ images: batching does not change the answer
    assert same.top1 == 1.0 and same.cosine > 0.99999 and same.cosine_min > 0.99999

    class Noise:
        def prepare(self, x):
            self.n = len(x)

        def infer(self):
            pass

        def output(self):
            return np.random.default_rng(0).normal(size=(self.n, 1000)).astype(np.float32)

    other = agreement(Noise(), t8, held_out, 1)
    assert other.cosine < 0.2 and other.top1 < 0.5


def test_an_int8_run_below_the_floor_is_inaccurate_and_claims_never_use_it(engine):
    result = timed_result([1.0] * 5)
    reference = np.ones((1, 10), dtype=np.float32)
    check_parity(result, reference, reference * 1.05, PARITY_TOLERANCE["int8"])
    result.agreement = Agreement(8, 0.25, 0.71, 0.5, "sha256:x")
    check_agreement(result)
    assert result.status == "inaccurate" and "0.710 < 0.9" in result.error
    kept = timed_result([1.0] * 5)
    kept.agreement = Agreement(8, 1.0, 0.99, 0.98, "sha256:x")
    check_agreement(kept)
    assert kept.status == "ok"
    low = store.save_run(engine, result, spec=ModelSpec("t8"), target=Target("onnxruntime", "cpu"), threads=2,
                         precision="int8", host=HOST)
    from sqlalchemy import text

    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM latest_valid_runs WHERE id = :id"), {"id": low}).scalar() == 0
        row = conn.execute(text("SELECT status, agreement_cosine, agreement_top1 FROM runs WHERE id = :id"),
                           {"id": low}).one()
    assert tuple(row) == ("inaccurate", 0.71, 0.25)


# --- the command line and the reports ------------------------------------------------------------------

@pytest.mark.parametrize("extra, expected", [
    (["--precision", "int8", "--calibration", "/no/such/folder"], "--calibration /no/such/folder: not a folder"),
    (["--calibration", "."], "--calibration is for int8"),
    (["--eval", "."], "random weights do not have"),
])
def test_bad_image_options_are_one_sentence(tmp_path, extra, expected):
    result = invoke("run", "--device", "cpu", "--backend", "onnxruntime", "--model", "t8", *extra,
                    "--db", tmp_path / "r.db")
    assert result.exit_code == 2 and expected in " ".join(result.output.split())


def test_a_precision_a_target_lacks_says_why(tmp_path):
    result = invoke("run", "--device", "cpu", "--backend", "torch", "--model", "t8", "--precision", "int8",
                    "--db", tmp_path / "r.db")
    assert result.exit_code == 2 and "skip torch/cpu: no int8 export (it offers fp32, fp16, bf16)" in " ".join(
        result.output.split())


def test_int8_sweep_stores_agreement_coverage_and_calibration(tmp_path):
    db = tmp_path / "r.db"
    result = invoke("run", "--device", "cpu", "--backend", "onnxruntime", "--model", "t8", "--resolution", RES,
                    "--precision", "int8", "--warmup", 1, "--warmup-time", 0, "--min-iterations", 5, "--min-time", 0,
                    "--profile", 0, "--cache", tmp_path / "cache", "--db", db)
    assert result.exit_code == 0, result.output
    assert "top-1 agree" in result.output
    engine = store.open_engine(f"sqlite:///{db}")
    _, rows = store.read_only_query(engine, "SELECT precision, status, agreement_images, agreement_cosine, calibration "
                                            "FROM runs WHERE published = 0")
    precision, status, count, cosine, calibration = rows[0]
    assert (precision, status, count) == ("int8", "ok", len(images.HELD_OUT_PHOTOS))
    assert cosine > AGREEMENT_FLOOR and calibration == images.calibration_set(RES).identity
    _, coverage = store.read_only_query(engine, "SELECT SUM(low_nodes), SUM(float_nodes) FROM precision_coverage "
                                                "WHERE backend = 'onnxruntime' AND precision = 'int8'")
    assert coverage[0][0] > 50
    shown = invoke("coverage", "--model", "t8", "--resolution", RES, "--precision", "int8", "--backend",
                   "onnxruntime", "--cache", tmp_path / "cache", "--db", db)
    assert "onnxruntime int8:" in shown.output and "100.0% of FLOPs in int8" in shown.output


def test_reports_keep_precisions_apart(tmp_path, engine, db):
    from harness.analysis.compare import compare
    from harness.analysis.precision import effects
    from harness.baselines import own_resolution

    save(engine, [10.0] * 5, target="onnxruntime/cpu")
    result = timed_result([4.0] * 5)
    result.agreement = Agreement(8, 0.875, 0.98, 0.92, "sha256:h")
    store.save_run(engine, result, spec=ModelSpec("t8"), target=Target("onnxruntime", "cpu"), threads=2,
                   precision="int8", host=HOST)
    found = compare(engine, own_resolution())
    assert {c.target for c in found.columns} == {"onnxruntime/cpu", "onnxruntime/cpu int8"}
    (effect,) = effects(engine)
    assert (effect.fp32_ms, effect.low_ms, effect.speedup, effect.agreement_cosine) == (10.0, 4.0, 2.5, 0.98)
    written = invoke("findings", "--db", db, "--out-dir", tmp_path / "docs")
    assert written.exit_code == 0, written.output
    (path,) = (tmp_path / "docs").glob("findings-*.md")
    text = path.read_text()
    assert "## Lower precision" in text and "| t8 | onnxruntime/cpu | int8 | 10.00 | 4.00 | 2.50x | 88% | 0.9800 |" in text


def test_torch_half_precisions_are_offered_only_where_computed(monkeypatch):
    from backends import torch_eager

    backend = BACKENDS["torch"]
    monkeypatch.setattr(torch_eager, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(torch_eager, "cpu_flags", lambda: {"avx2"})
    assert "no bf16 instructions" in backend.precision_reason("cpu", "bf16")
    assert "no fp16 arithmetic" in backend.precision_reason("cpu", "fp16")
    monkeypatch.setattr(torch_eager, "cpu_has_bf16", lambda: True)
    assert backend.precision_reason("cpu", "bf16") is None


def test_torch_bf16_session_computes_in_bf16(t8):
    x = example()
    session = BACKENDS["torch"].load(t8, None, "cpu", 1, "bf16")
    session.prepare(x.numpy())
    session.infer()
    with torch.inference_mode():
        reference = t8(x).numpy()
    error = np.abs(session.output() - reference).max() / np.abs(reference).max()
    assert session.facts() == {"runtime_precision": "bfloat16"} and 1e-4 < error < PARITY_TOLERANCE["bf16"]


def test_layers_alone_are_calibrated_on_what_they_receive_in_the_model(calibration):
    from harness.measure.layers import distinct_layers, layer_calibration

    spec = ModelSpec("t8", RES)
    layer = next(x for x in distinct_layers(spec) if "dwconv7x7" in x.signature)
    found = layer_calibration(spec, layer.path, calibration.batches(1)[:3])
    assert len(found) == 3 and found[0].shape == layer.input_shape
    assert not np.allclose(found[0], found[1])  # a different photograph, a different activation


def test_result_round_trips_the_precision_fields():
    result = RunResult(status="inaccurate", agreement=Agreement(8, 0.5, 0.8, 0.7, "sha256:h", 0.7, 50),
                       calibration="sha256:c")
    back = RunResult.from_json(result.to_json())
    assert back.agreement == result.agreement and back.calibration == "sha256:c" and back.status == "inaccurate"


def test_layers_int8_quantizes_each_layer_alone(tmp_path):
    db = tmp_path / "r.db"
    result = invoke("layers", "--device", "cpu", "--model", "t8", "--resolution", RES, "--backend", "onnxruntime",
                    "--precision", "int8", "--only", "dwconv7x7", "--warmup", 1, "--warmup-time", 0,
                    "--min-iterations", 5, "--min-time", 0, "--cache", tmp_path / "cache", "--db", db)
    assert result.exit_code == 0, result.output
    engine = store.open_engine(f"sqlite:///{db}")
    _, rows = store.read_only_query(engine, "SELECT layer, precision, status, calibration, artifact_path FROM runs "
                                            "WHERE layer IS NOT NULL ORDER BY id")
    assert len(rows) >= 2 and all(r[1] == "int8" and r[2] == "ok" for r in rows), rows
    import onnx

    quantized = next(r for r in rows if "dwconv7x7" in r[0])
    ops = {node.op_type for node in onnx.load(quantized[4]).graph.node}
    assert "QuantizeLinear" in ops and quantized[3] == images.calibration_set(RES).identity
    _, stored = store.read_only_query(engine, "SELECT COUNT(*) FROM precision_coverage")
    assert stored[0][0] == 0  # a layer's artifact never stands in for the whole model's coverage


def test_eval_folder_gives_top1_accuracy(tmp_path, t8, held_out):
    for index, name in enumerate(("chelsea.png", "coffee.png", "rocket.jpg")):
        (tmp_path / f"class{index}").mkdir()
        shutil.copy(images.package_dir("skimage") / name, tmp_path / f"class{index}" / name)
    labelled = images.labelled_set(tmp_path, RES)
    session = BACKENDS["torch"].load(t8, None, "cpu", 1)
    with torch.inference_mode():
        predicted = t8(torch.from_numpy(labelled[0].images)).argmax(1).numpy()
    found = agreement(session, t8, held_out, 1, labelled)
    assert found.eval_images == 3
    assert found.accuracy_top1 == pytest.approx(float((predicted == labelled[1]).mean()))
