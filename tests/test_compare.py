"""Published numbers stored as runs of their own, and `harness compare`: measured, imported and
published latencies side by side, with the paper's claims per device."""
from __future__ import annotations

import json

import pytest
from helpers import save
from typer.testing import CliRunner

from harness.ingest import published
from harness.analysis import claims
from harness.cli import app

README = "https://github.com/apple/ml-fastvit/blob/8af5928238cab99c45f64fc3e4e7b1516b8224ba/README.md"


def invoke(*args, **kwargs):
    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)


def test_the_bundled_tables_hold_the_checked_iphone_figures():
    (table,) = published.bundled()
    assert table.device == "iPhone 12 Pro" and table.url == README and "ModelBench" in table.citation
    assert table.latency_ms == {"t8": 0.8, "t12": 1.2, "s12": 1.4, "sa12": 1.6, "sa24": 2.6, "sa36": 3.5, "ma36": 4.6}


def test_published_runs_are_stored_once_and_labelled(db, engine):
    first = invoke("published", "--db", db)
    assert first.exit_code == 0 and "stored 7 published latencies (0 already stored)" in first.output
    assert "stored 0 published latencies (7 already stored)" in invoke("published", "--db", db).output
    rows = json.loads(invoke("report", "--format", "json", "--db", db).output)
    assert {(r["origin"], r["imported"]) for r in rows} == {("published", False)} and len(rows) == 7
    table = invoke("report", "--db", db, env={"COLUMNS": "250"}).output
    assert table.count("ok (published)") == 7


@pytest.mark.parametrize("content, expected", [
    ('{"tables": [{"citation": "x", "url": "u", "device": "d", "chip": "c", "os": "o", "target": "coreml/d", '
     '"resolution": 256, "form": "reparam", "latency_ms": {"t9": 1.0}}]}', "unknown model 't9'"),
    ('{"tables": [{"citation": "x", "url": "u", "device": "d", "chip": "c", "os": "o", "target": "coreml/d", '
     '"resolution": 256, "form": "reparam", "latency_ms": {"t8": -1}}]}', "positive milliseconds"),
    ('{"tables": [{"citation": "", "url": "u", "device": "d", "chip": "c", "os": "o", "target": "coreml/d", '
     '"resolution": 256, "form": "reparam", "latency_ms": {"t8": 1}}]}', "needs a citation"),
    ("not json", "not a published-numbers file"),
])
def test_a_bad_table_is_refused_before_anything_is_stored(tmp_path, db_file, content, expected):
    path = tmp_path / "table.json"
    path.write_text(content)
    result = invoke("published", "--file", path, "--db", db_file)
    assert result.exit_code == 2 and expected in " ".join(result.output.split()) and not db_file.exists()


def test_compare_sets_measured_beside_published_with_the_claims(tmp_path, db, engine):
    invoke("published", "--db", db)
    save(engine, [10.0] * 20, model="s12", target="openvino/cpu")
    save(engine, [15.0] * 20, model="timm:mobileone_s4", resolution=224, target="openvino/cpu", noisy=True)
    save(engine, [30.0] * 20, model="s12", target="openvino/cpu", form="train")  # not the fused form: not shown
    rows = json.loads(invoke("compare", "--format", "json", "--db", db).output)
    latencies = {(r["name"], r["target"], r["origin"]): r["value"] for r in rows if r["kind"] == "latency_ms"}
    assert latencies[("s12", "openvino/cpu", "measured")] == 10.0
    assert latencies[("timm:mobileone_s4", "openvino/cpu", "measured")] == 15.0
    assert latencies[("s12", "coreml/iphone-12-pro", "published")] == 1.4 and len(latencies) == 9
    (speedup,) = [r for r in rows if r["kind"] == "speedup"]  # the iPhone table has no MobileOne figure
    assert (speedup["name"], speedup["target"], speedup["value"], speedup["paper_mobile"], speedup["noisy"]) == (
        "s12_vs_mobileone_s4", "openvino/cpu", 1.5, 1.263, True)
    assert [r["name"] for r in rows if r["kind"] == "latency_ms" and r["noisy"]] == ["timm:mobileone_s4"]
    table = " ".join(invoke("compare", "--db", db, env={"COLUMNS": "250"}).output.split())
    assert "(published) [1]" in table and "1.50x" in table and "s12 vs mobileone_s4 (paper: mobile 1.263x, GPU 1.269x)" \
        in table and "[1] apple/ml-fastvit README.md" in table and "15.00 noisy" in table
    pictures = invoke("plot", "--out", tmp_path / "plots", "--db", db)
    assert pictures.exit_code == 0 and (tmp_path / "plots" / "latency_by_device.png").stat().st_size > 10_000


def test_claims_label_a_published_target_and_never_ask_to_run_it(db, engine):
    invoke("published", "--db", db)
    check = next(c for c in claims.check_all(engine) if c.claim.key == "s12_vs_mobileone_s4")
    assert check.target == "coreml/iphone-12-pro (published)" and check.verdict == "not enough data"
    assert check.missing.startswith("published figures of coreml/iphone-12-pro hold none for timm:mobileone_s4")


def test_compare_without_runs_says_so(db, engine):
    save(engine, [10.0] * 5, model="s12", form="train")
    result = invoke("compare", "--db", db)
    assert result.exit_code == 2 and "no valid fused-form runs" in result.output


def test_compare_after_a_first_sweep_names_what_each_claim_lacks_and_the_command(db, engine):
    """What `harness run --device cpu` leaves (t8, s12, sa12 on the CPU runtimes): every claim is listed,
    and the caption says which runs each lacks and the command that makes them."""
    for target in ("onnxruntime/cpu", "openvino/cpu"):
        for model in ("t8", "s12", "sa12"):
            save(engine, [10.0] * 20, model=model, target=target)
    save(engine, [12.0] * 20, model="timm:mobileone_s4", resolution=224, target="openvino/cpu")
    rows = json.loads(invoke("compare", "--format", "json", "--db", db).output)
    missing = {(r["name"], r["target"]): r["note"] for r in rows if r["kind"] == "missing"}
    assert missing[("s12_vs_mobileone_s4", "onnxruntime/cpu")] == (
        "needs timm:mobileone_s4 at 224px: harness run --device cpu --backend onnxruntime --model mobileone_s4")
    assert missing[("ma36_vs_convnext_base", "onnxruntime/cpu, openvino/cpu")] == (
        "needs ma36 at 256px and timm:convnext_base at 224px: harness run --device cpu --model ma36 --model convnext_base")
    assert ("s12_vs_mobileone_s4", "openvino/cpu") not in missing  # computed there: 1.2x
    (hint,) = [r["note"] for r in rows if r["kind"] == "hint"]
    assert "`harness published` adds the bundled ones" in hint
    table = " ".join(invoke("compare", "--db", db, env={"COLUMNS": "250"}).output.split())
    assert "sa24 vs caformer_s18 (faster?)" in table  # a claim no target can compute still has its row
    assert ("ma36 vs convnext_base on h onnxruntime/cpu, openvino/cpu: needs ma36 at 256px and timm:convnext_base at "
            "224px: harness run --device cpu --model ma36 --model convnext_base") in table
    assert "harness published" in table


def test_compare_at_another_resolution_asks_for_it(db, engine):
    save(engine, [10.0] * 20, model="s12", resolution=384, target="onnxruntime/cpu")
    rows = json.loads(invoke("compare", "--resolution", "384", "--format", "json", "--db", db).output)
    notes = [r["note"] for r in rows if r["kind"] == "missing" and r["name"] == "ma36_vs_convnext_base"]
    assert notes == ["needs ma36 at 384px and timm:convnext_base at 224px: harness run --device cpu --model ma36 "
                     "--resolution 384 && harness run --device cpu --model convnext_base"]


def test_published_columns_say_what_their_source_holds_not_a_command(db, engine):
    invoke("published", "--db", db)
    save(engine, [10.0] * 20, model="s12", target="onnxruntime/cpu")
    rows = json.loads(invoke("compare", "--format", "json", "--db", db).output)
    published = {r["name"]: r["note"] for r in rows if r["kind"] == "missing" and r["origin"] == "published"}
    assert published["s12_vs_mobileone_s4"] == "needs timm:mobileone_s4 at 224px: not in the published figures"
    assert not [r for r in rows if r["kind"] == "hint"]


def test_findings_set_this_host_beside_the_published_figures_and_name_what_claims_lack(tmp_path, db, engine):
    save(engine, [8.0] * 20, model="t8", target="openvino/cpu")
    save(engine, [12.0] * 20, model="t8", target="onnxruntime/cpu")
    without = invoke("findings", "--out-dir", tmp_path / "a", "--db", db)
    assert without.exit_code == 0, without.output
    text = next((tmp_path / "a").glob("findings-*.md")).read_text()
    assert "`harness published` adds the bundled ones" in text
    assert ("- `s12_vs_mobileone_s4` needs s12 at 256px and timm:mobileone_s4 at 224px: `harness run --device cpu "
            "--model s12 --model mobileone_s4`") in text
    invoke("published", "--db", db)
    invoke("findings", "--out-dir", tmp_path / "b", "--db", db)
    text = next((tmp_path / "b").glob("findings-*.md")).read_text()
    assert "| t8 | 0.80 | 8.00 (openvino/cpu) | 10.0x |" in text
