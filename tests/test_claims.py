"""The paper's claims re-checked against stored runs: verdicts, intervals, repeats."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import save
from typer.testing import CliRunner

from harness import store
from harness.analysis import claims
from harness.cli import app


def test_claim_verdicts(db, engine):
    rng = np.random.default_rng(0)
    noise = lambda ms: ms * (1 + 0.01 * rng.standard_normal(60))  # noqa: E731
    save(engine, noise(10.0), model="s12", target="openvino/cpu")
    save(engine, noise(15.0), model="timm:mobileone_s4", resolution=224, target="openvino/cpu")  # 1.5x: holds
    save(engine, noise(10.0), model="s12", target="torch/cpu")
    save(engine, noise(11.0), model="timm:mobileone_s4", resolution=224, target="torch/cpu")  # 1.1x < 1.263
    save(engine, noise(10.0), model="s12", form="train", target="torch/cpu")  # reparam no faster: does not hold
    save(engine, noise(5.0), model="timm:mobileone_s4", resolution=256, target="litert/cpu")  # wrong resolution
    by_key = {(c.claim.key, c.target): c for c in claims.check_all(engine)}
    held = by_key[("s12_vs_mobileone_s4", "openvino/cpu")]
    assert held.verdict == "holds" and held.low > 1.4 and held.speedup == pytest.approx(1.5, rel=0.02)
    assert by_key[("s12_vs_mobileone_s4", "torch/cpu")].verdict == "does not hold"
    assert by_key[("reparam_s12", "torch/cpu")].verdict == "does not hold"
    assert by_key[("reparam_s12", "openvino/cpu")].verdict == "not enough data"
    assert ("s12_vs_mobileone_s4", "litert/cpu") not in by_key  # the 256px MobileOne run is not the claim's
    assert by_key[("ma36_vs_convnext_base", "—")].verdict == "not enough data"
    assert claims.verdict(None, None, 2.1, 1.9) == "holds" and claims.verdict(None, None, 1.2, 1.9) == "does not hold"

    result = CliRunner().invoke(app, ["claims", "--format", "json", "--db", str(db)])
    rows = json.loads(result.output)
    assert {r["claim"] for r in rows} == {c.key for c in claims.CLAIMS}
    row = next(r for r in rows if r["claim"] == "s12_vs_mobileone_s4" and r["target"] == "openvino/cpu")
    assert row["verdict"] == "holds" and row["paper_mobile"] == 1.263 and row["ci95_low"] > 1.4


def test_claims_use_every_repeat_of_the_latest_sweep(engine):
    old, new = store.start_sweep(engine, "old"), store.start_sweep(engine, "new")
    save(engine, [100.0] * 5, sweep_id=old)  # an older sweep is ignored once a newer one timed the same spec
    save(engine, [10.0] * 5, form="train", sweep_id=old)
    for reparam_ms, train_ms in ((10.0, 14.0), (12.0, 13.0), (11.0, 16.0)):  # processes disagree a lot
        save(engine, [reparam_ms] * 5, sweep_id=new)
        save(engine, [train_ms] * 5, form="train", sweep_id=new)
    check = next(c for c in claims.check_all(engine) if c.claim.key == "reparam_t8")
    assert check.runs == (3, 3)
    assert check.speedup == pytest.approx(14.0 / 11.0)
    assert check.low < 1.1 < check.high  # the interval spans the process-to-process spread


def test_compare_resamples_processes_or_iterations():
    assert claims.compare([np.full(5, 10.0)], [np.full(5, 14.0)]) == (1.4, 1.4, 1.4)
    # several processes per side: the interval comes from the process medians alone
    fast = [np.full(50, 10.0), np.full(50, 11.0), np.full(50, 12.0)]
    slow = [np.full(50, 20.0), np.full(50, 22.0), np.full(50, 24.0)]
    speedup, low, high = claims.compare(fast, slow)
    assert speedup == pytest.approx(2.0) and low < 2.0 < high and low >= 20.0 / 12.0 and high <= 24.0 / 10.0


def test_not_enough_data_says_what_is_missing_and_how_to_get_it(db, engine):
    # `harness run --model s12 --model mobileone_s4` times both at 256; the claim wants MobileOne-S4 at 224
    save(engine, [10.0] * 5, model="s12", target="litert/cpu")
    save(engine, [12.0] * 5, model="timm:mobileone_s4", target="litert/cpu")
    check = next(c for c in claims.check_all(engine) if c.claim.key == "s12_vs_mobileone_s4")
    assert check.verdict == "not enough data" and check.target == "litert/cpu"
    assert check.missing == ("no valid run of timm:mobileone_s4 at 224px (reparam) on litert/cpu (found one at "
                             "256px): harness run --device cpu --backend litert --model mobileone_s4 --resolution 224")
    untried = next(c for c in claims.check_all(engine) if c.claim.key == "ma36_vs_convnext_base")
    assert untried.missing.startswith("no valid run of ma36 at 256px (reparam) or timm:convnext_base at 224px")
    table = CliRunner().invoke(app, ["claims", "--db", str(db)], env={"COLUMNS": "240"}).output
    assert "not enough data [1]" in table and "(found one at 256px)" in table


def test_a_verdict_on_one_process_per_side_says_so(db, engine):
    save(engine, [10.0] * 20, model="s12", target="openvino/cpu")
    save(engine, [15.0] * 20, model="timm:mobileone_s4", resolution=224, target="openvino/cpu")
    check = next(c for c in claims.check_all(engine) if c.claim.key == "s12_vs_mobileone_s4")
    assert check.verdict == "holds" and check.single_process
    table = CliRunner().invoke(app, ["claims", "--db", str(db)], env={"COLUMNS": "240"}).output
    assert "holds †" in table and "† rests on one process per side" in table
    rows = json.loads(CliRunner().invoke(app, ["claims", "--format", "json", "--db", str(db)]).output)
    assert next(r for r in rows if r["claim"] == "s12_vs_mobileone_s4")["single_process"] is True


def test_a_verdict_on_a_noisy_run_says_so(db, engine):
    save(engine, [10.0] * 20, model="s12", target="openvino/cpu", noisy=True)
    save(engine, [15.0] * 20, model="timm:mobileone_s4", resolution=224, target="openvino/cpu")
    save(engine, [10.0] * 20, model="s12", target="torch/cpu")
    save(engine, [15.0] * 20, model="timm:mobileone_s4", resolution=224, target="torch/cpu")
    checks = {c.target: c for c in claims.check_all(engine) if c.claim.key == "s12_vs_mobileone_s4"}
    assert checks["openvino/cpu"].noisy and not checks["torch/cpu"].noisy
    table = CliRunner().invoke(app, ["claims", "--db", str(db)], env={"COLUMNS": "240"}).output
    assert table.count("holds † noisy") == 1 and "noisy: other processes" in table
    rows = json.loads(CliRunner().invoke(app, ["claims", "--format", "json", "--db", str(db)]).output)
    assert {r["target"]: r["noisy"] for r in rows if r["claim"] == "s12_vs_mobileone_s4"} == {
        "openvino/cpu": True, "torch/cpu": False}


def test_targets_lacking_the_same_run_are_one_row_with_one_command(db, engine):
    """After a first sweep: every target lacks the training form; one row, and a command without --backend."""
    for target in ("onnxruntime/cpu", "openvino/cpu", "torch/cpu"):
        save(engine, [10.0] * 20, model="t8", target=target)
    save(engine, [12.0] * 20, model="s12", target="torch/cpu")
    CliRunner().invoke(app, ["published", "--db", str(db)])
    found = claims.check_all(engine)
    (t8,) = [g for g in claims.missing_runs(found) if g.claim.key == "reparam_t8"]
    assert len(t8.targets) == 3 and t8.text == ("no valid run of t8 at 256px (train) on 3 targets: harness run "
                                                "--device cpu --model t8 --resolution 256 --form train")
    (s12,) = [g for g in claims.missing_runs(found) if g.claim.key == "reparam_s12"]
    assert s12.targets == ("torch/cpu",)
    assert s12.text.endswith("--backend torch --model s12 --resolution 256 --form train")
    # the published table holds the fused form only: it is never asked for a training-form figure
    assert not [c for c in found if c.claim.key.startswith("reparam_") and "(published)" in c.target]
    table = " ".join(CliRunner().invoke(app, ["claims", "--db", str(db)], env={"COLUMNS": "250"}).output.split())
    assert "reparam_t8 │ 3 targets on h" in table and table.count("--model t8 --resolution 256 --form train") == 1


def _noise(ms: float, seed: int) -> np.ndarray:
    return ms * (1 + 0.005 * np.random.default_rng(seed).standard_normal(60))


def test_each_protocol_is_its_own_check_judged_against_that_devices_figure(db, engine):
    # the H200 picture: S12 wins eager fp32 batch 1, loses compiled fp16 batch 8
    save(engine, _noise(2.0, 1), model="s12", target="torch/gpu")
    save(engine, _noise(2.6, 2), model="mobileone_s4", resolution=224, target="torch/gpu")  # 1.30x >= 1.269
    save(engine, _noise(1.11, 3), model="s12", target="torch-compile/gpu", batch=8, precision="fp16")
    save(engine, _noise(0.78, 4), model="mobileone_s4", resolution=224, target="torch-compile/gpu", batch=8,
         precision="fp16")
    save(engine, _noise(1.11, 5), model="s12", target="torch-compile/gpu", batch=8)  # fp32 b8: no fp32 MobileOne
    save(engine, _noise(10.0, 6), model="s12", target="onnxruntime/cpu")
    save(engine, _noise(12.7, 7), model="mobileone_s4", resolution=224, target="onnxruntime/cpu")  # 1.27x
    checks = {(c.target, c.precision, c.batch): c for c in claims.check_all(engine)
              if c.claim.key == "s12_vs_mobileone_s4"}
    eager = checks[("torch/gpu", "fp32", 1)]
    assert eager.verdict == "holds" and eager.figure == (1.269, False) and not eager.paper_protocol
    assert eager.protocol == "fp32, batch 1, torch/gpu"
    compiled = checks[("torch-compile/gpu fp16", "fp16", 8)]
    assert compiled.verdict == "does not hold" and compiled.speedup == pytest.approx(0.78 / 1.11, rel=0.01)
    assert compiled.paper_protocol and compiled.protocol == "fp16, batch 8, torch-compile/gpu (the paper's protocol)"
    lacking = checks[("torch-compile/gpu", "fp32", 8)]  # batch 8 pairs only with batch 8
    assert lacking.verdict == "not enough data" and lacking.missing.endswith(
        "harness run --device gpu --backend torch-compile --model mobileone_s4 --resolution 224 --batch 8")
    cpu = checks[("onnxruntime/cpu", "fp32", 1)]  # no CPU figure in the paper: the weakest one it claims
    assert cpu.figure == (1.263, False) and cpu.verdict == "holds"

    result = CliRunner().invoke(app, ["claims", "--format", "json", "--db", str(db)])
    rows = [r for r in json.loads(result.output) if r["claim"] == "s12_vs_mobileone_s4"]
    assert {(r["protocol"], r["claimed_here"]) for r in rows} >= {
        ("fp16, batch 8, torch-compile/gpu (the paper's protocol)", "1.269x (GPU)"),
        ("fp32, batch 1, onnxruntime/cpu", "1.263x (weakest)")}
    table = CliRunner().invoke(app, ["claims", "--db", str(db)], env={"COLUMNS": "250"}).output
    assert "fp16, batch 8, torch-compile/gpu *" in table and "the paper's own protocol" in table


def test_as_fast_claims_hold_unless_significantly_slower(engine):
    save(engine, _noise(3.0, 1), model="ma36", resolution=384, target="torch-compile/gpu", batch=8, precision="fp16")
    save(engine, _noise(2.7, 2), model="nfnet_f1", resolution=320, target="torch-compile/gpu", batch=8,
         precision="fp16")  # 0.9x: significantly slower
    save(engine, [3.0, 3.1, 2.9, 3.05, 2.95], model="ma36", resolution=384, target="torch/gpu")  # 1.0x, noisy:
    save(engine, [3.0, 2.9, 3.1, 2.95, 3.05], model="nfnet_f1", resolution=320, target="torch/gpu")  # as fast
    save(engine, _noise(3.0, 3), model="ma36", resolution=384, target="coreml/mac:ane")
    save(engine, _noise(3.0, 4), model="nfnet_f1", resolution=320, target="coreml/mac:ane")
    checks = {c.target: c for c in claims.check_all(engine) if c.claim.key == "ma36_vs_nfnet_f1"}
    assert checks["torch/gpu"].figure == (1.0, True) and checks["torch/gpu"].verdict == "holds"
    assert checks["torch-compile/gpu fp16"].verdict == "does not hold"
    assert checks["coreml/mac:ane"].figure == (1.428, False) and checks["coreml/mac:ane"].verdict == "does not hold"
    assert claims.verdict(None, None, 0.96, 1.0, as_fast=True) == "holds"
    assert claims.verdict(None, None, 0.9, 1.0, as_fast=True) == "does not hold"


def test_sweep_protocols_choose_models_precision_and_batch():
    from harness.measure.plan import protocol_sweep
    from harness.spec import Form, Precision

    precision, batch, models = protocol_sweep("paper", "gpu", None, None, Precision.fp32, 1, Form.reparam)
    assert (precision.value, batch) == ("fp16", 8)
    assert models == [("s12", 256), ("timm:mobileone_s4", 224), ("ma36", 256), ("timm:convnext_base", 224),
                      ("ma36", 384), ("timm:dm_nfnet_f1", 320), ("sa24", 256), ("timm:caformer_s18", 224)]
    precision, batch, phone = protocol_sweep("paper", "mac:ane", None, None, Precision.fp32, 1, Form.reparam)
    assert (precision.value, batch) == ("fp32", 1) and phone == models  # every claim has a mobile figure or none
    precision, batch, here = protocol_sweep("claims", "cpu", None, None, Precision.fp16, 4, Form.reparam)
    assert (precision.value, batch, here) == ("fp16", 4, models)
    for args, message in ((("paper", "cpu", None, None, Precision.fp32, 1, Form.reparam), "the paper timed no cpu"),
                          (("paper", "gpu", None, None, Precision.fp32, 8, Form.reparam), "sets --batch itself"),
                          (("claims", "cpu", ["t8"], None, Precision.fp32, 1, Form.reparam), "drop --model"),
                          (("paper", "gpu", None, None, Precision.fp32, 1, Form.train), "drop --form")):
        with pytest.raises(ValueError, match=message):
            protocol_sweep(*args)
    result = CliRunner().invoke(app, ["run", "--device", "cpu", "--protocol", "paper"])
    assert result.exit_code == 2 and "--protocol claims times the same models here" in result.output


def test_size_claims_from_counted_parameters_and_macs(db_file):
    from harness.analysis.size_claims import SizeCheck, check_sizes

    found = {c.claim.key: c for c in check_sizes()}
    nfnet, litv2 = found["ma36_vs_nfnet_f1_size"], found["ma36_vs_litv2_b_size"]
    assert (nfnet.params, nfnet.macs) == (44_068_004, 17_665_892_352)  # MA36 at 384px, timm's parameter count
    assert (nfnet.other_params, nfnet.other_macs, nfnet.other_source) == (132_634_256, 35_538_968_576, "counted")
    assert nfnet.smaller == pytest.approx(0.668, abs=1e-3) and nfnet.fewer_macs == pytest.approx(0.503, abs=1e-3)
    assert nfnet.verdict == litv2.verdict == "holds"
    assert litv2.other_source.startswith("published") and "deformable" in litv2.other_source
    assert SizeCheck(nfnet.claim, 60_000_000, nfnet.macs, nfnet.other_params, nfnet.other_macs,
                     "counted").verdict == "does not hold"  # 54.8% smaller, not 66.7%
    result = CliRunner().invoke(app, ["claims", "--kind", "size", "--format", "json", "--db", str(db_file)])
    assert result.exit_code == 0, result.output
    assert [r["verdict"] for r in json.loads(result.output)] == ["holds", "holds"]
