"""harness advise: the search's pure steps (screening cut, Pareto front, agreement floor, mixed recipes from op
profiles), the screening-then-confirm orchestration over run_sweep with scripted workers (budget included), and
one real search on ONNX Runtime end to end."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from helpers import invoke, timed_result

from harness import store
from harness.analysis import advise as analysis
from harness.analysis.advise import CONFIRMED, SCREENED, Candidate, Choice
from harness.commands.advise import budget_seconds
from harness.measure import advise as search
from harness.measure import sweep
from harness.measure.plan import JobSettings, plan_jobs
from harness.protocol import Agreement, Footprint, OpRow, TimingPolicy
from harness.spec import ModelSpec, Target
from harness.views.advise import candidates_table, recommendations_table
from harness.web.app import create_app
from harness.views.findings import render
from harness.baselines import own_resolution


def candidate(target="onnxruntime/cpu", precision="fp32", keep_float="", threads=2, ms=10.0, cosine=1.0,
              memory=50.0, stage=SCREENED, status="ok", processes=1) -> Candidate:
    backend = target.split("/")[0]
    return Candidate("t8", 256, Choice(target, backend, precision, keep_float, threads), stage, status,
                     ms if status == "ok" else None, None, processes, cosine, 1.0, memory, False, None, [1])


def test_screening_keeps_the_fastest_that_reach_the_floor_and_their_fp32_references():
    ort_fp32 = candidate(ms=10.0)
    ort_mixed = candidate(precision="int8", keep_float="conv_dw_7x7", ms=7.0, cosine=0.995)
    ov_int8 = candidate("openvino/cpu", "int8", ms=5.0, cosine=0.95)  # fastest, but below the floor
    ov_fp32 = candidate("openvino/cpu", ms=9.0)
    torch_fp32 = candidate("torch/cpu", ms=20.0)
    crashed = candidate("litert/cpu", "int8", status="crashed")
    top, references = analysis.survivors([ort_fp32, ort_mixed, ov_int8, ov_fp32, torch_fp32, crashed], 1, 0.99)
    assert top == [ort_mixed]
    assert references == [ort_fp32, ov_fp32]  # its own target's fp32, then the fastest fp32
    top, references = analysis.survivors([ort_fp32, ort_mixed, ov_int8, ov_fp32, torch_fp32], 2, 0.99)
    assert top == [ort_mixed, ov_fp32] and references == [ort_fp32]  # never twice
    assert analysis.survivors([ov_int8], 3, 0.99) == ([], [])


def test_pareto_front_and_recommendation_under_the_floor():
    fast_inexact = candidate("openvino/cpu", "int8", ms=5.0, cosine=0.95, memory=20.0, stage=CONFIRMED)
    mixed = candidate(precision="int8", keep_float="conv_dw_7x7", ms=7.0, cosine=0.995, memory=30.0,
                      stage=CONFIRMED)
    fp32 = candidate(ms=10.0, memory=50.0, stage=CONFIRMED)
    slow_fp32 = candidate("torch/cpu", ms=20.0, memory=60.0, stage=CONFIRMED)  # worse on every count than fp32
    unknown_memory = candidate("litert/cpu", ms=9.0, memory=None, stage=CONFIRMED)
    screened_only = candidate("litert/cpu", "int8", ms=6.0, cosine=0.999, stage=SCREENED)
    found = [fast_inexact, mixed, fp32, slow_fp32, unknown_memory, screened_only]
    front = analysis.pareto_front(found)
    assert slow_fp32 not in front and fast_inexact in front and mixed in front and fp32 in front
    assert unknown_memory in front  # the most agreeing at 9 ms: unknown memory does not hide it
    advice = analysis.model_advice("t8", 256, found, 0.99)
    assert advice.recommended is mixed  # the screened-only one is faster but was never confirmed
    assert advice.runtime_fp32 is fp32 and advice.fastest_fp32 is unknown_memory
    assert advice.gain_over_runtime_fp32 == pytest.approx(10 / 7)
    assert advice.gain_over_fastest_fp32 == pytest.approx(9 / 7)
    inexact_only = analysis.model_advice("t8", 256, [fast_inexact, screened_only], 0.99)
    assert inexact_only.recommended is None and "reaches the agreement floor" in inexact_only.why_none
    shown = candidates_table(advice)
    notes = {row.values["choice"]: row.values["note"] for row in shown.rows}
    assert notes[fast_inexact.choice.label] == "below the floor (0.99)"  # shown, not chosen
    assert notes[mixed.choice.label] == "recommended"
    assert {r.values["choice"] for r in shown.rows if r.values["on_front"]} == {c.choice.label for c in front}


def test_mixed_recipes_keep_in_float_what_int8_made_slower():
    fp32 = {"conv_dw_7x7": 1.0, "conv_dw_3x3": 0.5, "conv_pointwise": 6.0, "linear": 0.01, "other": 0.1}
    int8 = {"conv_dw_7x7": 4.0, "conv_dw_3x3": 0.6, "conv_pointwise": 3.0, "linear": 0.5, "other": 2.0}
    slower = analysis.slower_in_int8(fp32, int8)
    # largest loss first; 'linear' costs too little in fp32 to matter, 'other' (quantize ops) cannot be kept
    assert slower == ["conv_dw_7x7", "conv_dw_3x3"]
    assert analysis.mixed_recipes(slower) == ["conv_dw_3x3,conv_dw_7x7", "conv_dw_7x7", "conv_dw_3x3"]
    assert analysis.mixed_recipes(["conv_dw_7x7"]) == ["conv_dw_7x7"]
    assert analysis.mixed_recipes([]) == []
    assert analysis.slower_in_int8(fp32, {**int8, "conv_dw_3x3": 0.52}) == ["conv_dw_7x7"]  # within 5 %: no
    # a target without a profile of its own (LiteRT): what most profiled targets found slower comes first
    pooled = analysis.pooled_slower({"onnxruntime/cpu": ["conv_dw_7x7", "linear"], "openvino/cpu": ["conv_dw_7x7"],
                                     "executorch/cpu": ["conv_dense", "conv_dw_7x7", "conv_dw_3x3"]})
    assert pooled == ["conv_dw_7x7", "conv_dense", "linear", "conv_dw_3x3"]
    assert analysis.mixed_recipes(pooled)[1:] == ["conv_dw_7x7", "conv_dense"]


def test_reproduce_command_names_the_recipe_threads_and_mode():
    mixed = candidate(precision="int8", keep_float="conv_dw_3x3,conv_dw_7x7", threads=1)
    assert analysis.reproduce_command(mixed) == (
        "harness run --device cpu --backend onnxruntime --model t8 --resolution 256 --precision int8 "
        "--keep-float conv_dw_3x3 --keep-float conv_dw_7x7 --threads 1 --repeats 3")
    compiled = candidate("torch-compile/cpu[mode=max-autotune]")
    assert analysis.reproduce_command(compiled) == (
        "harness run --device cpu --backend torch-compile --model t8 --resolution 256 --compile-mode max-autotune "
        "--threads 2 --repeats 3")  # fp32: no --precision, as every command the harness prints


def test_budget_is_a_duration(tmp_path):
    assert budget_seconds("15m") == 900 and budget_seconds("90") == 90 and budget_seconds("1.5h") == 5400
    for bad in ("soon", "0m", "-5m", "5d"):
        with pytest.raises(ValueError, match="--budget takes a duration"):
            budget_seconds(bad)
    result = invoke("advise", "--device", "cpu", "--budget", "soon", "--db", tmp_path / "r.db")
    assert result.exit_code == 2 and "--budget takes a duration such as 15m" in result.output
    result = invoke("advise", "--device", "cpu", "--model", "t9", "--db", tmp_path / "r.db")
    assert result.exit_code == 2 and "t9" in result.output
    result = invoke("advise", "--device", "android", "--db", tmp_path / "r.db")  # no phone here, none runs locally
    assert result.exit_code == 2 and "searches the targets this machine runs itself" in " ".join(result.output.split())
    assert not (tmp_path / "r.db").exists()  # refused before anything was stored


# Scripted workers: per (backend, precision, keep_float) a latency at 2 threads, agreement and op profile.
SCRIPT = {
    ("onnxruntime", "fp32", ""): (10.0, 1.0, {"conv_dw_7x7": 1.0, "conv_pointwise": 6.0}),
    ("onnxruntime", "int8", ""): (12.0, 0.996, {"conv_dw_7x7": 6.0, "conv_pointwise": 3.0}),
    ("onnxruntime", "int8", "conv_dw_7x7"): (7.0, 0.995, {"conv_dw_7x7": 1.0, "conv_pointwise": 3.0}),
    ("openvino", "fp32", ""): (9.0, 1.0, {"conv_dw_7x7": 1.0, "conv_pointwise": 5.0}),
    ("openvino", "int8", ""): (6.0, 0.95, {"conv_dw_7x7": 0.9, "conv_pointwise": 2.5}),  # below the floor
}
OTHER_MS = 15.0  # any other precision a target offers on this CPU (OpenVINO fp16/bf16)


class ScriptedWorkers:
    """What the worker processes would report for each job, with a clock that advances 10 s per job; records
    which jobs ran in a kept worker (screening) and which in a fresh process each (confirmation)."""

    def __init__(self):
        self.now = 0.0
        self.kept: list = []
        self.fresh: list = []

    def clock(self) -> float:
        return self.now

    def result(self, job):
        self.now += 10.0
        ms, cosine, profile = SCRIPT.get((job.target.backend, job.precision, job.keep_float), (OTHER_MS, 0.999, {}))
        ms *= 1.8 if job.threads == 1 else 1.0
        rows = [OpRow(cls, cls, cls, 1, value) for cls, value in profile.items()] if job.profile_iterations else []
        found = timed_result([ms] * 5, op_profile=rows, footprint=Footprint(model_peak_mb=40.0))
        found.agreement = Agreement(8, 1.0, cosine, cosine, "held-out")
        return found

    def fresh_process(self, job, timeout_s):
        self.fresh.append(job)
        return self.result(job)

    def kept_worker(self):
        workers = self

        class Kept:
            def __call__(self, job, timeout_s):
                workers.kept.append(job)
                return workers.result(job)

            def new_round(self):
                pass

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                pass

        return Kept()


def scripted_search(tmp_path, monkeypatch, budget_s: float, keep: int = 2):
    workers = ScriptedWorkers()
    monkeypatch.setattr(sweep, "measure_in_child", workers.fresh_process)
    monkeypatch.setattr(search, "WorkerPerTarget", workers.kept_worker)
    engine = store.open_engine(f"sqlite:///{tmp_path / 'r.db'}", create=True)
    settings = search.AdviseSettings("cpu", 2, TimingPolicy(), JobSettings(2, TimingPolicy(), tmp_path / "cache"),
                                     floor=0.99, keep=keep, repeats=3, budget_s=budget_s,
                                     backends=["onnxruntime", "openvino"])
    outcome = search.advise(engine, [ModelSpec("t8")], settings, "harness advise --model t8", clock=workers.clock)
    return engine, outcome, workers


def test_screen_then_confirm_finds_the_mixed_recipe_and_proves_it(tmp_path, monkeypatch):
    engine, outcome, workers = scripted_search(tmp_path, monkeypatch, budget_s=3600)
    screened = {(j.target.backend, j.precision, j.keep_float) for j in workers.kept}
    # the mixed recipe came from ONNX Runtime's own profiles (7x7 depthwise slower in int8); OpenVINO's showed none
    assert ("onnxruntime", "int8", "conv_dw_7x7") in screened
    assert not any(j.keep_float for j in workers.kept if j.target.backend == "openvino")
    assert all(j.profile_iterations == search.SCREEN_PROFILE for j in workers.kept
               if j.precision in ("fp32", "int8") and not j.keep_float)
    assert all(j.policy == search.SCREEN_POLICY for j in workers.kept)
    sources = {target: text for _, target, text in outcome.recipe_sources}
    assert "its own op profiles" in sources["onnxruntime/cpu"] and "conv_dw_7x7" in sources["onnxruntime/cpu"]
    assert "no class slower in int8" in sources["openvino/cpu"]
    # confirmed: the two fastest above the floor, the best's fp32 reference, the best on 1 thread; 3 processes each
    confirmed = [(j.target.backend, j.precision, j.keep_float, j.threads) for j in workers.fresh]
    expected = {("onnxruntime", "int8", "conv_dw_7x7", 2), ("openvino", "fp32", "", 2), ("onnxruntime", "fp32", "", 2),
                ("onnxruntime", "int8", "conv_dw_7x7", 1)}
    assert set(confirmed) == expected and all(confirmed.count(c) == 3 for c in expected)
    assert all(j.policy == TimingPolicy() and j.profile_iterations == 0 for j in workers.fresh)
    [found] = analysis.advice(engine, outcome.screen_sweeps, outcome.confirm_sweeps, 0.99)
    best = found.recommended
    assert (best.choice.target, best.choice.recipe, best.choice.threads, best.stage, best.processes) == (
        "onnxruntime/cpu", "int8+float(conv_dw_7x7)", 2, CONFIRMED, 3)
    assert found.gain_over_runtime_fp32 == pytest.approx(10 / 7)
    assert found.gain_over_fastest_fp32 == pytest.approx(9 / 7)
    inexact = next(c for c in found.candidates if c.choice.target == "openvino/cpu" and c.choice.precision == "int8")
    assert inexact.stage == SCREENED and inexact in found.front  # fastest, on the front, shown and never chosen
    # every candidate is a stored run; screening's are 'screened', never the latest valid run a claim would use
    assert store.count_runs(engine) == len(workers.kept) + len(workers.fresh)
    assert store.count_runs(engine, store.Run.status == "screened") == len(workers.kept)
    with Session(engine) as session:
        latest = store.latest_runs(session)
        assert latest and all(run.sweep_id in outcome.confirm_sweeps for run in latest)
    [session] = analysis.sessions(engine)
    assert (session.screen_sweeps, session.confirm_sweeps) == (outcome.screen_sweeps, outcome.confirm_sweeps)
    assert [a.recommended.choice for a in analysis.latest_advice(engine, 0.99)] == [best.choice]
    summary = recommendations_table([found]).records()[0]
    assert summary["command"].endswith("--precision int8 --keep-float conv_dw_7x7 --threads 2 --repeats 3")
    # the same tables on the dashboard and in findings
    client = create_app(engine).test_client()
    page = client.get("/advise.json").get_json()
    assert page["advise"][0]["recommended"] == "onnxruntime/cpu int8+float(conv_dw_7x7), 2 threads"
    assert {row["choice"] for row in page["advise-t8-256"]} == {c.choice.label for c in found.candidates}
    assert "int8+float(conv_dw_7x7)" in client.get("/advise").get_data(as_text=True)
    findings, _ = render(engine, own_resolution())
    ship = findings[findings.index("## How to ship FastViT on this device"):]
    assert "| t8 | 256 | onnxruntime/cpu int8+float(conv_dw_7x7), 2 threads | 7.00 |" in ship
    printed = invoke("advise", "--show", "--db", tmp_path / "r.db", "--format", "json")
    assert printed.exit_code == 0 and json.loads(printed.stdout) == page  # the page is what the command prints
    assert client.get("/advise?floor=2").status_code == 400
    stricter = client.get("/advise.json?floor=0.9999").get_json()["advise"][0]  # only fp32 agrees that closely
    assert stricter["recommended"] == "openvino/cpu fp32, 2 threads"


def test_a_spent_budget_stops_screening_and_confirms_only_the_best_and_its_references(tmp_path, monkeypatch):
    # 10 s per job, 40 s in all: screening may take 60 %, so three jobs start (at 0, 10 and 20 s); the 10 s left
    # hold no optional confirmation, but the best candidate is always confirmed
    engine, outcome, workers = scripted_search(tmp_path, monkeypatch, budget_s=40)
    assert [(j.target.backend, j.precision) for j in workers.kept] == [
        ("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32")]  # each target's jobs together
    left = {(choice, why) for _, choice, why in outcome.not_screened}
    assert ("openvino/cpu int8, 2 threads", "the screening budget ran out") in left
    assert ("onnxruntime/cpu int8+float(conv_dw_7x7), 2 threads", "the screening budget ran out") in left
    assert ("onnxruntime/cpu fp32, 2 threads", "not confirmed: the budget ran out") in left
    assert ("openvino/cpu fp32, 1 thread", "not confirmed: the budget ran out") in left
    assert [(j.target.backend, j.precision, j.threads) for j in workers.fresh] == [("openvino", "fp32", 2)] * 3
    [found] = analysis.advice(engine, outcome.screen_sweeps, outcome.confirm_sweeps, 0.99)
    assert found.recommended.choice.target == "openvino/cpu" and found.recommended.processes == 3
    assert found.runtime_fp32 is found.recommended and found.gain_over_runtime_fp32 == 1.0


def test_advise_on_onnxruntime_end_to_end(tmp_path):
    """A real search: ONNX Runtime exports fp32, int8 and whatever mixed recipe its own profiles suggest for t8 at
    64 px, screens them in a kept worker, confirms in fresh processes and stores every candidate as a run."""
    db = tmp_path / "r.db"
    result = invoke("advise", "--device", "cpu", "--model", "t8", "--resolution", "64", "--backend", "onnxruntime",
                    "--min-agreement", "0.9", "--keep", "1", "--repeats", "2", "--budget", "20m", "--db", db,
                    "--cache", tmp_path / "cache", "--format", "json")
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    [summary] = page["advise"]
    assert summary["recommended"] and summary["median_ms"] > 0 and summary["cosine"] >= 0.9
    assert summary["command"].startswith("harness run --device cpu --backend onnxruntime --model t8 --resolution 64")
    rows = page["advise-t8-64"]
    recipes = {(r["precision"], r["keep_float"]) for r in rows}
    assert {("fp32", ""), ("int8", "")} <= recipes
    stages = {r["stage"] for r in rows}
    assert stages == {SCREENED, CONFIRMED}
    engine = store.open_engine(f"sqlite:///{db}")
    stored = sum(len(r["run_ids"]) for r in rows)
    assert store.count_runs(engine, store.Run.sweep_id.is_not(None)) >= stored >= len(rows)
    assert Path(tmp_path / "cache").is_dir()


def test_screening_marks_a_job_that_needs_a_process_of_its_own_screened_too(tmp_path, monkeypatch):
    """A cold torch.compile leaves the kept worker for a fresh process (run_sweep); screening still marks it."""
    workers = ScriptedWorkers()
    monkeypatch.setattr(search, "measure_in_child", workers.fresh_process)
    monkeypatch.setattr(sweep, "needs_cold_compile", lambda job: job.target.backend == "openvino")
    engine = store.open_engine(f"sqlite:///{tmp_path / 'r.db'}", create=True)
    jobs = [job for backend in ("onnxruntime", "openvino") for job in plan_jobs(
        [ModelSpec("t8")], [Target(backend, "cpu")], threads=2, policy=search.SCREEN_POLICY, cache_dir=tmp_path)]
    outcome = sweep.run_sweep(engine, jobs, "screen", measure=search.Screening(workers.kept_worker()))
    assert [j.target.backend for j in workers.kept] == ["onnxruntime"]
    assert [j.target.backend for j in workers.fresh] == ["openvino"]
    assert outcome.statuses == ["screened", "screened"]


def test_the_second_screening_starts_on_each_models_fastest_targets(tmp_path):
    screened = [candidate("openvino/cpu", ms=12.0), candidate("openvino/cpu", "int8", ms=13.0),
                candidate("executorch/cpu", ms=32.0), candidate("litert/cpu", "int8", ms=64.0),
                candidate("litert/cpu", ms=21.0), candidate("onnxruntime/cpu", "int8", status="crashed")]
    ranks = analysis.target_ranks(screened)
    assert ranks == {("t8", 256, "openvino/cpu"): 0, ("t8", 256, "litert/cpu"): 1, ("t8", 256, "executorch/cpu"): 2}
    jobs = [job for backend in ("executorch", "litert", "onnxruntime", "openvino") for job in plan_jobs(
        [ModelSpec("t8")], [Target(backend, "cpu")], threads=2, policy=search.SCREEN_POLICY, cache_dir=tmp_path,
        precision="int8", keep_float="conv_dw_7x7")]
    ordered = [job.target.backend for job in search.promising_first(jobs, ranks)]
    assert ordered == ["openvino", "litert", "executorch", "onnxruntime"]  # never screened: last
