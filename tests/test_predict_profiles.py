"""A predictor for a device the harness cannot time kernels on: op-class rates fitted from the op profiles of whole
models, imported from the device (here: benchmark_model's real XNNPACK op profile) or timed here."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from harness import store
from harness.predict.rates import ANY_DEPTHWISE, ELEMENTS, MEMORY, Profile, fit_rates, predict_rates

FIXTURES = Path(__file__).parent / "fixtures"
PHONE_TARGET = "litert/android:pixel7"


def profile(name: str, latency: float, conv: float, other: float, conv_gflops: float, m_elements: float) -> Profile:
    return Profile(name, latency, {"conv_pointwise": conv, "norm": other},
                   {"conv_pointwise": conv_gflops * 1e9, ELEMENTS: m_elements * 1e6})


def test_rates_scale_to_the_whole_latency_and_predict_by_flops_and_elements():
    # a profile that accounts for 8 of its model's 10 ms: every rate is scaled by 10/8
    costs = fit_rates([profile("a", 10.0, conv=6.0, other=2.0, conv_gflops=3.0, m_elements=4.0)])
    assert costs["conv_pointwise"].coef == [pytest.approx(2.5)]  # ms per GFLOP
    assert costs[MEMORY].coef == [pytest.approx(0.625)]  # ms per million elements
    same = predict_rates(costs, {"conv_pointwise": 3e9, ELEMENTS: 4e6})
    assert same.ms == pytest.approx(10.0)  # a profile predicts its own model exactly
    bigger = predict_rates(costs, {"conv_pointwise": 12e9, ELEMENTS: 8e6})
    assert bigger.ms == pytest.approx(2.5 * 12 + 0.625 * 8)
    assert math.isnan(bigger.low_ms) and math.isnan(bigger.high_ms)  # one profile: no spread to give an interval
    with pytest.raises(ValueError, match="no profile has linear"):
        predict_rates(costs, {"conv_pointwise": 1e9, "linear": 1e9, ELEMENTS: 1e6})


def test_leave_one_profile_out_gives_the_interval():
    profiles = [profile("a", 10.0, 6.0, 2.0, 3.0, 4.0), profile("b", 22.0, 14.0, 4.0, 6.0, 8.0),
                profile("c", 5.0, 3.0, 1.0, 1.5, 2.0)]
    costs = fit_rates(profiles)
    errors = costs["conv_pointwise"].cv_errors
    assert len(errors) == 3 and all(abs(e) < 0.5 for e in errors) and any(abs(e) > 0.01 for e in errors)
    found = predict_rates(costs, {"conv_pointwise": 3e9, ELEMENTS: 4e6})
    assert found.low_ms < found.ms < found.high_ms


def test_time_filed_under_a_class_the_model_computes_nothing_in_counts_as_moving_data():
    odd = Profile("a", 10.0, {"conv_pointwise": 5.0, "linear": 3.0, "norm": 2.0},  # linear: no FLOPs in its model
                  {"conv_pointwise": 1e9, ELEMENTS: 1e6})
    costs = fit_rates([odd])
    assert "linear" not in costs and costs[MEMORY].coef == [pytest.approx(5.0)]
    assert predict_rates(costs, {"conv_pointwise": 1e9, ELEMENTS: 1e6}).ms == pytest.approx(10.0)


def test_a_profile_that_does_not_name_depthwise_kernel_sizes_gives_them_one_rate():
    """XNNPACK's profile says "DWConv" (conv_dw_other) for 3x3 and 7x7 alike; its model has FLOPs in both."""
    xnnpack = Profile("t8", 10.0, {"conv_dw_other": 2.0, "conv_pointwise": 6.0, "norm": 2.0},
                      {"conv_dw_3x3": 1e9, "conv_dw_7x7": 3e9, "conv_pointwise": 2e9, ELEMENTS: 1e6})
    costs = fit_rates([xnnpack])
    assert costs[ANY_DEPTHWISE].coef == [pytest.approx(0.5)] and "conv_dw_7x7" not in costs
    assert predict_rates(costs, {"conv_dw_7x7": 8e9}).ms == pytest.approx(4.0)


def test_a_phones_imported_profile_fits_a_predictor_and_predicts_through_the_cli(db, engine):
    """benchmark_model's real op profile (XNNPACK on a phone), imported as t8: fitted with nothing timed here, the
    phone's target predicted, the prediction marked and never a run nor a claim."""
    from helpers import invoke

    imported = invoke("import", FIXTURES / "benchmark_model_xnnpack_profile.log", "--tool", "benchmark_model",
                      "--device", "android:pixel7", "--model", "t8", "--threads", "4", "--db", db)
    assert imported.exit_code == 0, imported.output
    runs_before = store.count_runs(engine)
    claims_before = invoke("claims", "--db", db, "--format", "json").output

    fitted = invoke("predict", "fit", "--from-profiles", PHONE_TARGET, "--db", db, "--format", "json")
    assert fitted.exit_code == 0, fitted.output
    listed = json.loads(invoke("predict", "--list", "--db", db, "--format", "json").output)
    assert listed[0]["source"] == "op-class rates from 1 profiled model(s)" and listed[0]["target"] == PHONE_TARGET
    assert {MEMORY, ANY_DEPTHWISE} <= {row["kind"] for row in listed}  # XNNPACK's "DWConv" names no kernel size

    same = invoke("predict", "--model", "t8", "--target", PHONE_TARGET, "--db", db, "--format", "json")
    assert same.exit_code == 0, same.output
    (row,) = json.loads(same.output)
    assert row["predicted_ms"] == pytest.approx(11.9437, rel=1e-3)  # its own model: the log's mean
    assert row["measured_ms"] == pytest.approx(11.9437, rel=1e-3)

    larger = json.loads(invoke("predict", "--model", "t8", "--resolution", "384", "--target", PHONE_TARGET,
                               "--db", db, "--format", "json").output)[0]
    assert 2.0 < larger["predicted_ms"] / row["predicted_ms"] < 2.5  # (384/256)^2 = 2.25 the FLOPs and elements
    assert larger["measured_ms"] is None
    table = invoke("predict", "--model", "t8", "--target", PHONE_TARGET, "--db", db).output
    assert "predicted" in table and "op-class rates" in table and "conv_pointwise" in table

    with Session(engine) as session:
        (predictor,) = session.scalars(select(store.Predictor)).all()
        (run,) = session.scalars(select(store.Run)).all()
        assert predictor.training_runs == [run.uuid] and predictor.host_id == run.host_id  # the phone's host
    assert store.count_runs(engine) == runs_before
    assert invoke("claims", "--db", db, "--format", "json").output == claims_before


def test_fitting_from_profiles_says_what_is_missing(db, engine):
    from helpers import invoke, save

    save(engine)  # a run without an op profile
    missing = invoke("predict", "fit", "--from-profiles", "torch/cpu", "--db", db)
    assert missing.exit_code == 2 and "holds an op profile" in " ".join(missing.output.split())


def test_rates_are_fitted_at_one_thread_count(db, engine):
    """Profiles of one target at 4 and at 1 thread: a fit reads one thread count, the newest unless told."""
    from helpers import invoke

    for threads in ("4", "1"):
        imported = invoke("import", FIXTURES / "benchmark_model_xnnpack_profile.log", "--tool", "benchmark_model",
                          "--device", "android:pixel7", "--model", "t8", "--threads", threads, "--db", db)
        assert imported.exit_code == 0, imported.output
    assert invoke("predict", "fit", "--from-profiles", PHONE_TARGET, "--db", db).exit_code == 0
    assert invoke("predict", "fit", "--from-profiles", PHONE_TARGET, "--threads", "4", "--db", db).exit_code == 0
    with Session(engine) as session:
        uuid_by_threads = {run.threads: run.uuid for run in session.scalars(select(store.Run))}
        fitted = [(p.threads, p.training_runs) for p in session.scalars(select(store.Predictor)
                                                                         .order_by(store.Predictor.id))]
    assert fitted == [(1, [uuid_by_threads[1]]), (4, [uuid_by_threads[4]])]
    none = invoke("predict", "fit", "--from-profiles", PHONE_TARGET, "--threads", "2", "--db", db)
    assert none.exit_code == 2 and "with 2 threads holds an op profile" in " ".join(none.output.split())
