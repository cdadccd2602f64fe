"""The baselines' Qualcomm AI Hub latencies that qai-hub-models 0.65.0 ships (its own perf.yaml and manifest.yaml
files, tests/fixtures/qai_hub_models), stored as published runs and set beside the rest by `harness compare`."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from harness.ingest import published_aihub
from harness.cli import app

ZOO = Path(__file__).parent / "fixtures" / "qai_hub_models"
S24 = "Samsung Galaxy S24"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})


def test_every_passed_job_of_a_baseline_is_a_cited_table():
    tables = published_aihub.tables(ZOO)
    s24 = {(t.target, t.precision, *t.latency_ms.items()) for t in tables if t.device == S24}
    # the figures of perf.yaml's "Samsung Galaxy S24" entries, float and w8a8
    assert ("aihub-tflite/aihub:Samsung Galaxy S24", "fp32", ("timm:convnext_base", 5.414)) in s24
    assert ("aihub-qnn-dlc/aihub:Samsung Galaxy S24", "fp32", ("timm:convnext_base", 5.899)) in s24
    assert ("aihub-onnx/aihub:Samsung Galaxy S24", "fp32", ("timm:convnext_base", 5.364)) in s24
    # AI Hub's own w8a8 (its quantize job, integer I/O) is not this harness's int8 QDQ model: a recipe of its own
    assert ("aihub-tflite/aihub:Samsung Galaxy S24", "w8a8", ("timm:resnet50", 0.585)) in s24
    assert not any(t.precision not in ("fp32", "w8a8") for t in tables)  # w8a16 has no precision here
    tflite = next(t for t in tables if t.device == S24 and t.target.startswith("aihub-tflite")
                  and "timm:convnext_base" in t.latency_ms)
    assert tflite.resolution == 224 and tflite.url == "https://app.aihub.qualcomm.com/jobs/jpe7339o5/"
    assert "qai-hub-models 0.65.0" in tflite.citation and "598 NPU of 598" in tflite.citation


def test_a_job_that_did_not_pass_is_left_out_and_a_wheel_reads_alike(tmp_path):
    zoo = tmp_path / "qai_hub_models"
    shutil.copytree(ZOO, zoo)
    perf = zoo / "models" / "convnext_base" / "perf.yaml"
    perf.write_text(perf.read_text().replace("job_id: jpe7339o5\n              job_status: Passed",
                                             "job_id: jpe7339o5\n              job_status: Failed", 1))
    assert not any("jpe7339o5" in t.url for t in published_aihub.tables(zoo))
    wheel = tmp_path / "qai_hub_models-0.65.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path in ZOO.rglob("*"):
            if path.is_file():
                archive.write(path, f"qai_hub_models/{path.relative_to(ZOO)}")
    assert published_aihub.tables(wheel) == published_aihub.tables(ZOO)


def test_compare_sets_them_beside_the_rest_and_storing_twice_adds_nothing(db_file):
    first = invoke("published", "--aihub-models", ZOO, "--aihub-device", S24, "--db", db_file)
    assert first.exit_code == 0 and "stored 12 published latencies (0 already stored)" in first.output
    again = invoke("published", "--aihub-models", ZOO, "--aihub-device", S24, "--db", db_file)
    assert "stored 0 published latencies (12 already stored)" in again.output
    rows = json.loads(invoke("compare", "--format", "json", "--db", db_file).output)
    latencies = {(r["name"], r["target"]): (r["value"], r["origin"], r["citation"]) for r in rows
                 if r["kind"] == "latency_ms"}
    value, origin, citation = latencies[("timm:convnext_base", "aihub-tflite/aihub:Samsung Galaxy S24")]
    assert (value, origin) == (5.414, "published") and "jpe7339o5" in citation
    assert latencies[("timm:resnet50", "aihub-tflite/aihub:Samsung Galaxy S24 w8a8")][0] == 0.585


def test_what_cannot_be_read_is_one_sentence(tmp_path, db_file):
    unknown = invoke("published", "--aihub-models", ZOO, "--aihub-device", "Nokia 3310", "--db", db_file)
    assert unknown.exit_code == 2 and "no AI Hub figures for Nokia 3310" in unknown.output
    missing = invoke("published", "--aihub-models", tmp_path / "nowhere", "--db", db_file)
    assert missing.exit_code == 2 and "pip install qai-hub-models" in " ".join(missing.output.split())
    empty = tmp_path / "empty"
    empty.mkdir()
    none = invoke("published", "--aihub-models", empty, "--db", db_file)
    assert none.exit_code == 2 and "holds no AI Hub profile" in " ".join(none.output.split())
    both = invoke("published", "--aihub", "--file", tmp_path / "x.json", "--db", db_file)
    assert both.exit_code == 2 and "not both" in both.output
    assert not db_file.exists()
