"""One table model per result, drawn by every view: a column's format changed in the model shows in the terminal,
the markdown findings and the dashboard, whose JSON carries the same column unrounded; and every dashboard page's
`.json` is the document the CLI prints with `--format json` for the same database (SQLite and PostgreSQL)."""
from __future__ import annotations

import json

import pytest
from helpers import HOST, PROFILE, save, timed_result
from typer.testing import CliRunner

from harness import store
from harness.baselines import own_resolution
from harness.cli import app
from harness.ingest.published import bundled, store_tables
from harness.opclass import OVERHEAD_SIGNATURE
from harness.protocol import CoverageRow, RunResult
from harness.spec import ModelSpec, Target
from harness.views import claims as claim_views
from harness.views.findings import render
from harness.views.table import Column
from harness.web.app import create_app

# medians with more digits than any view rounds to: what JSON must keep
FAST_MS, SLOW_MS = 10.123456, 13.987654


def invoke(*args, **kwargs):
    result = CliRunner().invoke(app, [str(a) for a in args], **kwargs)
    assert "Traceback" not in result.output, result.output
    return result


def fill(engine) -> dict[str, int]:
    """Runs of every kind the pages show: a claim's two models on two targets (one profiled), a training-form
    run, a crash, layers timed alone, a delegate's coverage and the bundled published figures."""
    ids = {}
    for target, scale in (("onnxruntime/cpu", 1.0), ("torch/cpu", 2.0)):
        ids[f"s12 {target}"] = save(engine, [FAST_MS * scale] * 20, model="s12", target=target, op_profile=PROFILE)
        save(engine, [SLOW_MS * scale] * 20, model="timm:mobileone_s4", resolution=224, target=target)
    save(engine, [30.0] * 20, model="s12", form="train")
    store.save_run(engine, RunResult(status="crashed", error="worker died"), spec=ModelSpec("s12"),
                   target=Target("openvino", "cpu"), threads=2, precision="fp32", host=HOST)
    for signature, ms, count in ((OVERHEAD_SIGNATURE, 0.01, 1), ("dwconv7x7+bn s1 g64 64->64 @1x64x64x64", 0.4, 6)):
        store.save_run(engine, timed_result([ms] * 20), spec=ModelSpec("s12"), target=Target("torch", "cpu"),
                       threads=2, precision="fp32", host=HOST, layer=signature, layer_count=count)
    delegated = timed_result([5.0] * 20)
    delegated.coverage = [CoverageRow("xnnpack", "aten.convolution.default", "conv_dw_7x7", 7, True, 6, 0, 900, 0),
                          CoverageRow("xnnpack", "aten.gelu.default", "activation", None, False, 0, 4, 0, 40)]
    store.save_run(engine, delegated, spec=ModelSpec("s12"), target=Target("executorch", "cpu"), threads=2,
                   precision="fp32", host=HOST)
    store_tables(engine, bundled())
    return ids


def test_a_column_format_changed_in_the_table_model_shows_in_every_view(db, engine, monkeypatch):
    fill(engine)
    changed = [Column("fast_ms", "fast (ms)", "ms", digits=4) if c.key == "fast_ms" else c
               for c in claim_views.CLAIM_COLUMNS]
    monkeypatch.setattr(claim_views, "CLAIM_COLUMNS", changed)
    shown = f"{FAST_MS:.4f}"

    terminal = " ".join(invoke("claims", "--kind", "latency", "--db", db, env={"COLUMNS": "250"}).output.split())
    assert "fast (ms)" in terminal and shown in terminal
    markdown, _ = render(engine, own_resolution(256))
    assert "| fast (ms) |" in markdown and f"| {shown} |" in markdown
    client = create_app(store.open_reader(str(db))).test_client()
    page = client.get("/claims").get_data(as_text=True)
    assert "fast (ms)" in page and f">{shown}</td>" in page
    # JSON carries the same column by its key, unrounded, from the page and from the CLI alike
    for records in (json.loads(invoke("claims", "--format", "json", "--db", db).output),
                    client.get("/claims.json").get_json()):
        found = sorted(r["fast_ms"] for r in records if r["claim"] == "s12_vs_mobileone_s4" and r["fast_ms"])
        assert found == pytest.approx([FAST_MS, 2 * FAST_MS])
        assert all(r["fast_ms"] != float(f"{r['fast_ms']:.4f}") for r in records if r["fast_ms"])


def test_every_page_answers_as_the_json_its_command_prints(db, engine):
    ids = fill(engine)
    run_id = ids["s12 onnxruntime/cpu"]
    client = create_app(store.open_reader(str(db))).test_client()
    pairs = {"/index.json": ["compare"], "/claims.json": ["claims", "--kind", "latency"],
             "/model/s12.json": ["show", "model", "s12"], f"/run/{run_id}.json": ["show", "run", run_id]}
    for path, command in pairs.items():
        page = client.get(path)
        assert page.status_code == 200 and page.mimetype == "application/json", path
        printed = json.loads(invoke(*command, "--format", "json", "--db", db, env={"COLUMNS": "250"}).output)
        assert page.get_json() == printed, path
        html = client.get(path.removesuffix(".json").replace("/index", "/"))
        assert html.headers["Link"] == f'<{path}>; rel="alternate"; type="application/json"', path
    model = client.get("/model/s12.json").get_json()
    assert set(model) == {"runs", "breakdown", "layers", "outliers", "delegation", "quantization"}
    assert {r["target"] for r in model["runs"]} >= {"onnxruntime/cpu", "torch/cpu", "openvino/cpu"}
    assert {r["backend"] for r in model["delegation"]} == {"executorch"}
    run = client.get(f"/run/{run_id}.json").get_json()
    assert run["run"][0]["median_ms"] == pytest.approx(FAST_MS) and len(run["samples"]) == 20
    assert client.get("/run/999999.json").status_code == 404
    assert client.get("/run/999999.json").get_json() == {"error": "no run 999999 in this database"}


def test_a_page_of_several_tables_refuses_csv_in_one_sentence(db, engine):
    fill(engine)
    result = invoke("show", "model", "s12", "--format", "csv", "--db", db)
    assert result.exit_code == 2 and "--format json prints them all" in " ".join(result.output.split())
    missing = invoke("show", "run", "999999", "--db", db)
    assert missing.exit_code == 2 and "no run 999999" in missing.output
