"""Every command that takes a file, given a file of another kind: one sentence, exit 2, nothing of another
tool's output around it, and no database created. The files are real ones of other kinds: a log, a
PNG picture, a NumPy array, an ETDump, a JSON file of another shape."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import FIXTURES
from typer.testing import CliRunner

from harness.cli import app

PNG = FIXTURES.parent.parent / "docs" / "plots-amd-epyc" / "latency_by_backend.png"
ETDUMP = FIXTURES / "executorch_t8_64px_xnnpack.etdump"
TEXT_LOG = FIXTURES / "trtexec_sa12_fp16.log"
OTHER_JSON = FIXTURES / "trtexec_times.json"


@pytest.fixture
def npy(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.arange(12, dtype=np.float32))
    return path


def refused(*args) -> str:
    """Run the command; assert it ended in one error sentence with exit 2; return that sentence."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    text = result.output
    assert result.exit_code == 2, text
    assert "Traceback" not in text and text.count("error:") == 1, text
    assert text.lstrip().startswith("error:"), text  # nothing printed before it (flatc's usage, torch's warnings)
    assert "Usage:" not in text and "flatc" not in text, text
    return " ".join(text.split())


@pytest.mark.parametrize("source, expected", [
    (TEXT_LOG, "is not a SQLite database"),
    (PNG, "is not a SQLite database"),
    (ETDUMP, "is not a SQLite database"),
])
def test_merge_of_a_file_that_is_not_a_database(tmp_path, source, expected):
    db = tmp_path / "dest.db"
    assert expected in refused("merge", source, "--db", db)
    assert not db.exists()


def test_merge_of_a_file_with_sqlites_header_but_damaged(tmp_path):
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    assert "cannot read the source" in refused("merge", damaged, "--db", tmp_path / "dest.db")


@pytest.mark.parametrize("tool", ["trtexec", "benchmark_model", "benchmark_app"])
@pytest.mark.parametrize("wrong", ["png", "etdump", "npy"])
def test_import_of_a_binary_file_as_a_text_log(tmp_path, npy, tool, wrong):
    path = {"png": PNG, "etdump": ETDUMP, "npy": npy}[wrong]
    text = refused("import", path, "--tool", tool, "--device", "somewhere", "--model", "t8", "--db", tmp_path / "r.db")
    assert "is not a text log" in text and f"reads the text {tool} prints" in text
    assert not (tmp_path / "r.db").exists()


@pytest.mark.parametrize("wrong", ["log", "png", "npy"])
def test_import_of_a_file_that_is_not_an_etdump(tmp_path, npy, wrong):
    path = {"log": TEXT_LOG, "png": PNG, "npy": npy}[wrong]
    text = refused("import", path, "--tool", "etdump", "--device", "pixel", "--model", "t8", "--db", tmp_path / "r.db")
    assert "is not an ETDump" in text


def test_import_of_a_wrong_etrecord_delegation_or_export_times(tmp_path):
    base = ["import", ETDUMP, "--tool", "etdump", "--device", "pixel", "--model", "t8", "--resolution", "64",
            "--db", tmp_path / "r.db"]
    assert "is not an ETRecord" in refused(*base, "--etrecord", TEXT_LOG)
    assert "is not a delegation.json" in refused(*base, "--delegation", OTHER_JSON)
    trt = ["import", TEXT_LOG, "--tool", "trtexec", "--device", "gpu", "--model", "sa12", "--db", tmp_path / "r.db"]
    assert "not valid --exportTimes JSON" in refused(*trt, "--export-times", TEXT_LOG)
    assert "is not a text log" in refused(*trt, "--export-times", PNG)


@pytest.mark.parametrize("wrong", ["log", "png", "json"])
def test_published_file_of_another_kind(tmp_path, wrong):
    path = {"log": TEXT_LOG, "png": PNG, "json": OTHER_JSON}[wrong]
    assert "not a published-numbers file" in refused("published", "--file", path, "--db", tmp_path / "r.db")
    assert not (tmp_path / "r.db").exists()


@pytest.mark.parametrize("wrong", ["log", "png", "npy", "etdump"])
def test_weights_of_another_kind(tmp_path, npy, wrong):
    path = {"log": TEXT_LOG, "png": PNG, "npy": npy, "etdump": ETDUMP}[wrong]
    text = refused("run", "--device", "cpu", "--model", "t8", "--weights", path, "--db", tmp_path / "r.db")
    assert "is not a readable PyTorch checkpoint" in text
    assert not (tmp_path / "r.db").exists()


LOGS = {"trtexec": "trtexec_10.16_loadengine_shapes_batch4.log", "benchmark_model": "benchmark_model_tflite2.20_am62x_cpu.log",
        "benchmark_app": "benchmark_app_t8.log"}


@pytest.mark.parametrize("wrote, told", [(w, t) for w in LOGS for t in LOGS if w != t])
def test_a_log_of_another_tool_is_named_for_what_it_is(tmp_path, wrote, told):
    text = refused("import", FIXTURES / LOGS[wrote], "--tool", told, "--device", "x", "--model", "t8",
                   "--db", tmp_path / "r.db")
    assert f"is a {wrote} log, not {told}'s: import it with --tool {wrote}" in text
