"""One measurement over time (analysis.history): a change is marked only beyond what each run measured, its
process-to-process spread included, and a change resting on single-process runs is marked unconfirmed."""
from __future__ import annotations

import pytest
from helpers import save

from harness import store
from harness.analysis.claims import run_command
from harness.analysis.history import history

KEY = {"model": "t8", "resolution": 256, "batch": 1, "form": "reparam", "weights": "random:0",
       "target": "onnxruntime/cpu", "threads": 2, "precision": "fp32"}


def _tight(median_ms: float) -> list[float]:
    """Samples whose median's interval is narrow (+-1%)."""
    return [median_ms * (0.99 + 0.02 * i / 39) for i in range(40)]


def _history(engine, *medians_and_spreads):
    ids = []
    for median, spread in medians_and_spreads:
        run_id = save(engine, _tight(median), target=KEY["target"])
        if spread is not None:
            store.set_process_spread(engine, [run_id], spread)
        ids.append(run_id)
    with engine.connect() as conn:
        (host,) = conn.exec_driver_sql("SELECT DISTINCT host_id FROM runs").one()
    return ids, history(engine, host_id=host, **KEY)


def test_single_process_runs_apart_are_a_change_to_confirm(engine):
    ids, found = _history(engine, (10.0, None), (14.0, None))
    assert [p.change for p in found.points] == [None, "regression"]
    assert found.regressions[0].run_id == ids[1] and not found.points[1].confirmed
    assert found.unconfirmed == [found.points[1]]
    assert found.confirm_command == ("harness run --device cpu --backend onnxruntime --model t8 --resolution 256 "
                                     "--threads 2 --repeats auto")


def test_processes_that_landed_far_apart_hide_a_change_of_that_size(engine):
    # each run timed in several processes whose medians spread 50%: 10 -> 14 ms is inside that
    _ids, found = _history(engine, (10.0, 0.5), (14.0, 0.5))
    assert [p.change for p in found.points] == [None, None]
    assert found.unconfirmed == [] and found.confirm_command is None


def test_a_change_beyond_a_small_process_spread_is_confirmed(engine):
    _ids, found = _history(engine, (10.0, 0.03), (14.0, 0.02), (9.0, 0.02))
    assert [p.change for p in found.points] == [None, "regression", "improvement"]
    assert all(p.confirmed for p in found.points[1:]) and found.confirm_command is None


def test_a_command_names_a_farm_device_with_spaces_as_one_argument():
    command = run_command("aihub:Samsung Galaxy S24 (Family)", ["aihub-qnn"], "t8", 256, "reparam", "int8")
    assert command == ("harness run --device 'aihub:Samsung Galaxy S24 (Family)' --backend aihub-qnn --model t8 "
                       "--resolution 256 --precision int8")


def test_the_chart_draws_the_band_a_change_is_judged_by(engine):
    from harness.web import charts
    _ids, found = _history(engine, (10.0, 0.5), (14.0, None))
    bars = charts.history(found)["data"][0]["error_y"]
    # the first run's bars reach its process spread (+-5 ms), far beyond its +-1% interval; the second's are
    # its interval alone
    assert bars["array"][0] == pytest.approx(5.0, rel=1e-3) and bars["arrayminus"][0] == pytest.approx(5.0, rel=1e-3)
    assert 0 < bars["array"][1] < 0.2 and 0 < bars["arrayminus"][1] < 0.2
