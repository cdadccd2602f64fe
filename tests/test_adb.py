"""Android phones over adb: serials, quoting for the phone's shell, phone facts, and a whole phone run
against a fake adb."""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
from helpers import fake_phone

from backends import adb


def test_adb_device_listing_and_serial_choice():
    listing = "List of devices attached\nR58N12ABC\tdevice\nemulator-5554\toffline\n0123XYZ\tunauthorized\n\n"
    assert adb.parse_devices(listing) == ["R58N12ABC"]
    assert adb.resolve_serial("android", ["R58N12ABC"]) == "R58N12ABC"
    assert adb.resolve_serial("android:R58N12ABC", ["R58N12ABC", "X"]) == "R58N12ABC"
    with pytest.raises(adb.AdbError, match="several phones attached"):
        adb.resolve_serial("android", ["A", "B"])
    with pytest.raises(adb.AdbError, match="no Android phone attached"):
        adb.resolve_serial("android", [])
    with pytest.raises(adb.AdbError, match="not a valid adb serial"):
        adb.resolve_serial("android:A;rm -rf /", ["A"])


def test_adb_shell_arguments_are_quoted_for_the_phone_shell():
    args = adb.shell_args("adb", "R58", "/data/local/tmp/bm", "--graph=/tmp/a b.tflite; reboot")
    assert args[:4] == ["adb", "-s", "R58", "shell"]
    assert shlex.split(args[4]) == ["/data/local/tmp/bm", "--graph=/tmp/a b.tflite; reboot"]


def test_thermal_status():
    assert adb.parse_thermal_status("IsStatusOverride: false\nThermal Status: 2\nCached temperatures:") == 2
    assert adb.parse_thermal_status("no thermal HAL") is None


def test_android_run_drives_the_phone_through_adb(tmp_path, monkeypatch):
    """The whole Android path with a fake adb: pushes, chmod, the tool's arguments, phone facts."""
    from backends.litert_backend import BENCHMARK_MODEL_ENV, LiteRtBackend
    from harness.protocol import TimingPolicy

    calls = fake_phone(monkeypatch, tmp_path)
    tool = Path(os.environ[BENCHMARK_MODEL_ENV])
    artifact = tmp_path / "abc123" / "model.tflite"
    artifact.parent.mkdir()
    artifact.write_bytes(b"TFL3")
    backend = LiteRtBackend()
    assert backend.unavailable_reason("android") is None
    policy = TimingPolicy(warmup_iterations=10, warmup_seconds=1, min_iterations=50, min_seconds=3)
    out = backend.time_remote(artifact, "android", 4, policy, delegate="xnnpack")
    assert out.tool_result.timed.count == 251
    assert out.device_facts["model"] == "Pixel 7" and out.device_facts["soc"] == "Tensor G2"
    assert out.device_facts["thermal_before"] == 1 and out.device_facts["thermal_after"] == 1
    pushes = [c for c in calls if c[3:4] == ["push"]]
    assert pushes[0][4:] == [str(artifact), f"{adb.REMOTE_DIR}/abc123.tflite"]
    assert pushes[1][4:] == [str(tool), f"{adb.REMOTE_DIR}/benchmark_model"]
    run = next(shlex.split(c[4]) for c in calls if c[3:4] == ["shell"] and "benchmark_model" in c[4]
               and "--graph" in c[4])
    assert run[1:5] == [f"--graph={adb.REMOTE_DIR}/abc123.tflite", "--num_threads=4", "--warmup_runs=10",
                        "--warmup_min_secs=1"]
    assert all(isinstance(c, list) for c in calls)


def test_android_unavailable_reasons(monkeypatch, tmp_path):
    from backends.litert_backend import BENCHMARK_MODEL_ENV, LiteRtBackend

    monkeypatch.delenv("ADB", raising=False)
    monkeypatch.setattr(adb.shutil, "which", lambda name: None)
    assert "adb not found" in LiteRtBackend().unavailable_reason("android")
    monkeypatch.setenv("ADB", "/opt/adb")
    monkeypatch.setattr(adb, "attached_phones", lambda run=None: ["R58"])
    monkeypatch.delenv(BENCHMARK_MODEL_ENV, raising=False)
    reason = LiteRtBackend().unavailable_reason("android")
    assert "benchmark_model not found" in reason and BENCHMARK_MODEL_ENV in reason
