"""Mixed int8 recipes (harness.measure.recipe): each runtime's quantizer really leaves the chosen op class in float,
read back from the runtime's own view of the artifact (as int8 coverage reads it) and from its profiled kernels;
`harness run --keep-float` stores the recipe as a run of its own, kept apart from full int8 everywhere."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import HOST, invoke, timed_result

from backends import BACKENDS
from harness import store
from harness.measure import images
from harness.measure.artifacts import model_artifact, precision_coverage_of
from harness.measure.recipe import keep_float_recipe, keeps
from harness.protocol import Agreement, Job, ProtocolError, TimingPolicy
from harness.spec import ModelSpec, Target

RES = 64  # small inputs: every export below stays within seconds
SPEC = ModelSpec("t8", RES)
DW7 = "conv_dw_7x7"


@pytest.fixture(scope="module")
def t8():
    return SPEC.build()


@pytest.fixture(scope="module")
def calibration():
    return images.calibration_set(RES)


def example() -> torch.Tensor:
    return torch.randn(1, 3, RES, RES, generator=torch.Generator().manual_seed(0))


def by_class(rows) -> dict[str, tuple[int, int]]:
    """op class -> (int8 nodes, float nodes), summed over the coverage rows."""
    found: dict[str, tuple[int, int]] = {}
    for row in rows:
        low, high = found.get(row.op_class, (0, 0))
        found[row.op_class] = (low + row.low_nodes, high + row.float_nodes)
    return found


def mixed(backend: str, t8, calibration, tmp_path_factory, recipe: str = DW7):
    """(artifact, coverage by op class) of `backend`'s int8 t8 with `recipe` kept in float."""
    path, _ = model_artifact(SPEC, BACKENDS[backend], "int8", t8, example(), tmp_path_factory.mktemp(backend),
                             calibration=calibration, keep_float=recipe)
    return path, by_class(precision_coverage_of(BACKENDS[backend], path))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "litert", "executorch"])
def test_the_kept_class_runs_in_float_and_the_rest_in_int8(backend, t8, calibration, tmp_path_factory):
    _, found = mixed(backend, t8, calibration, tmp_path_factory)
    low, high = found[DW7]
    assert low == 0 and high >= 3, found  # t8's RepMixers and CPE: 7x7 depthwise, every one left in float
    assert found["conv_pointwise"][0] >= 10, found  # the pointwise convolutions stay int8


def test_onnxruntime_runs_float_kernels_for_the_kept_class(t8, calibration, tmp_path_factory):
    from harness.opclass import classify_rows

    path, _ = mixed("onnxruntime", t8, calibration, tmp_path_factory)
    session = BACKENDS["onnxruntime"].load(t8, path, "cpu", 1, "int8")
    session.prepare(example().numpy())
    kernels = {(row.op_type, row.op_class) for row in classify_rows(session.profile(2))}
    assert ("QLinearConv", "conv_pointwise") in kernels, kernels
    assert ("QLinearConv", DW7) not in kernels and any(c == DW7 and "QLinear" not in t for t, c in kernels), kernels


def test_executorch_runs_float_xnnpack_convolutions_for_the_kept_class(t8, calibration, tmp_path_factory):
    path, _ = mixed("executorch", t8, calibration, tmp_path_factory)
    session = BACKENDS["executorch"].load(t8, path, "cpu", 1, "int8")
    session.prepare(example().numpy())
    session.infer()
    operators = [row["op_type"] for row in session.profile(1)]
    assert any("Convolution" in op and "F32" in op for op in operators), operators  # the 7x7 depthwise ones
    assert any("Convolution" in op and ("QC8" in op or "QS8" in op) for op in operators), operators


def test_the_recipe_is_part_of_the_artifact_key(t8, calibration, tmp_path):
    backend = BACKENDS["onnxruntime"]
    full, _ = model_artifact(SPEC, backend, "int8", t8, example(), tmp_path, calibration=calibration)
    kept, cached = model_artifact(SPEC, backend, "int8", t8, example(), tmp_path, calibration=calibration,
                                  keep_float=DW7)
    assert full != kept and not cached
    with pytest.raises(ValueError, match="cannot keep ops in float"):
        model_artifact(SPEC, BACKENDS["coreml"], "int8", t8, example(), tmp_path, calibration=calibration,
                       keep_float=DW7)


def test_recipe_options_are_checked():
    assert keep_float_recipe(["linear", DW7, DW7], "int8") == "conv_dw_7x7,linear"
    assert keep_float_recipe(None, "fp32") == ""
    with pytest.raises(ValueError, match="not an op class"):
        keep_float_recipe(["conv7"], "int8")
    with pytest.raises(ValueError, match="quantizes nothing"):
        keep_float_recipe([DW7], "fp32")
    keep = keeps("conv_dw_7x7,linear")
    assert keep("Conv", 7, True) and keep("GroupConvolution", 7, True) and keep("conv2d", 7, True)
    assert keep("MatMul (constant weights)", None, False) and not keep("MatMul", None, False)  # attention: not linear
    assert not keep("Conv", 1, False) and keeps("") is None
    policy = TimingPolicy(1, 0, 1, 0)
    with pytest.raises(ProtocolError, match="quantizes nothing"):
        Job(SPEC, Target("onnxruntime", "cpu"), 1, policy, "/tmp", "fp32", keep_float=DW7)


@pytest.mark.parametrize("extra, expected", [
    (["--precision", "int8", "--keep-float", "conv7"], "--keep-float conv7: not an op class"),
    (["--keep-float", DW7], "--keep-float is for int8 recipes; --precision fp32 quantizes nothing"),
])
def test_bad_recipes_are_one_sentence(tmp_path, extra, expected):
    result = invoke("run", "--device", "cpu", "--backend", "onnxruntime", "--model", "t8", *extra,
                    "--db", tmp_path / "r.db")
    assert result.exit_code == 2 and expected in " ".join(result.output.split())


def test_a_runtime_that_cannot_keep_float_is_skipped_with_why(tmp_path):
    result = invoke("run", "--device", "cpu", "--backend", "torch", "--backend", "onnxruntime", "--model", "t8",
                    "--resolution", RES, "--precision", "int8", "--keep-float", DW7, "--warmup", 1, "--warmup-time",
                    0, "--min-iterations", 3, "--min-time", 0, "--profile", 0, "--cache", tmp_path / "cache",
                    "--db", tmp_path / "r.db", "--format", "csv")  # csv: every cell whole, however wide
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "skip torch/cpu" in text and ",int8+float(conv_dw_7x7)," in text  # the runs' precision column
    engine = store.open_engine(f"sqlite:///{tmp_path / 'r.db'}")
    _, rows = store.read_only_query(engine, "SELECT precision, keep_float, status FROM runs WHERE published = 0")
    assert rows == [("int8", DW7, "ok")]
    _, coverage = store.read_only_query(engine, "SELECT low_nodes, float_nodes FROM precision_coverage WHERE "
                                                "keep_float = 'conv_dw_7x7' AND op_class = 'conv_dw_7x7'")
    assert sum(low for low, _ in coverage) == 0 and sum(high for _, high in coverage) >= 3


def test_coverage_shows_what_a_recipe_left_in_float(tmp_path):
    result = invoke("coverage", "--model", "t8", "--resolution", RES, "--backend", "onnxruntime", "--backend",
                    "tensorrt", "--precision", "int8", "--keep-float", DW7, "--cache", tmp_path / "cache",
                    "--db", tmp_path / "r.db", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "tensorrt" in result.stderr and "cannot keep chosen ops in float" in " ".join(result.stderr.split())
    rows = {(r["backend"], r["precision"], r["op_class"]): r for r in json.loads(result.stdout)}
    dw7 = rows[("onnxruntime", "int8+float(conv_dw_7x7)", DW7)]
    assert dw7["low_nodes"] == 0 and dw7["float_nodes"] >= 3
    assert rows[("onnxruntime", "int8+float(conv_dw_7x7)", "conv_pointwise")]["low_nodes"] >= 10


def test_reports_keep_a_mixed_recipe_apart_from_full_int8(engine):
    from harness.analysis.compare import compare
    from harness.analysis.precision import effects
    from harness.baselines import own_resolution

    for keep_float, ms in (("", 6.0), (DW7, 4.0)):
        result = timed_result([ms] * 5)
        result.agreement = Agreement(8, 1.0, 0.99, 0.98, "sha256:h")
        store.save_run(engine, result, spec=ModelSpec("t8"), target=Target("onnxruntime", "cpu"), threads=2,
                       precision="int8", host=HOST, keep_float=keep_float)
    found = compare(engine, own_resolution())
    assert {c.target for c in found.columns} == {"onnxruntime/cpu int8", "onnxruntime/cpu int8+float(conv_dw_7x7)"}
    assert sorted((e.precision, e.low_ms) for e in effects(engine)) == [("int8", 6.0),
                                                                       ("int8+float(conv_dw_7x7)", 4.0)]


def test_claims_never_judge_a_mixed_recipe(engine):
    from harness.analysis.claims import check_all

    # the paper: S12 faster than MobileOne-S4; here full int8 S12 is slower, its mixed recipe twice as fast
    for model, resolution, keep_float, ms in (("s12", 256, "", 5.0), ("s12", 256, DW7, 2.5),
                                              ("timm:mobileone_s4", 224, "", 4.0)):
        result = timed_result([ms] * 5)
        result.agreement = Agreement(8, 1.0, 0.99, 0.98, "sha256:h")
        store.save_run(engine, result, spec=ModelSpec(model, resolution), target=Target("onnxruntime", "cpu"),
                       threads=2, precision="int8", host=HOST, keep_float=keep_float)
    checks = [c for c in check_all(engine) if c.claim.key == "s12_vs_mobileone_s4" and c.speedup]
    assert [(c.target, round(c.speedup, 2)) for c in checks] == [("onnxruntime/cpu int8", 0.8)]
