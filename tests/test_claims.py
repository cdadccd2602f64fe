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
