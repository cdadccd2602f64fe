"""Device names, the targets planned on them, and thread counts."""
from __future__ import annotations

import pytest

from harness.measure import targets as devices
from harness.spec import device_matches


def test_device_names():
    assert devices.check_device("cpu") == "cpu" and devices.check_device("mac:ane") == "mac:ane"
    assert devices.check_device("android:R58N") == "android:R58N"
    for bad in ("tpu", "android:", "mac:tpu"):
        with pytest.raises(ValueError, match=f"unknown device '{bad}'; choose one of: cpu, gpu"):
            devices.check_device(bad)
    assert device_matches("mac", "mac:ane") and device_matches("cpu", "cpu")
    assert not device_matches("mac", "machine")


def test_thread_counts(monkeypatch):
    monkeypatch.setattr(devices, "usable_cores", lambda: 2)
    assert devices.threads_for("cpu", None) == 2 and devices.threads_for("cpu", 1) == 1
    with pytest.raises(ValueError, match="--threads 3 exceeds the 2 cores"):
        devices.threads_for("cpu", 3)
    # a phone's threads run on the phone: its own default, no cap from this host
    assert devices.threads_for("android:R58", None) == devices.PHONE_THREADS
    assert devices.threads_for("android", 8) == 8


def test_android_targets_carry_the_delegate(monkeypatch):
    from backends.litert_backend import LiteRtBackend

    monkeypatch.setattr(LiteRtBackend, "unavailable_reason", lambda self, device: None)
    targets, _ = devices.plan_targets("android:R58", ["litert"], "fp16", "gpu")
    assert [t.name for t in targets] == ["litert/android:R58[delegate=gpu]"]
    assert targets[0].option_dict() == {"delegate": "gpu"}
    assert devices.local_targets(targets) == []
    cpu, _ = devices.plan_targets("cpu", ["litert"])
    assert [t.name for t in cpu] == ["litert/cpu"] and devices.local_targets(cpu) == cpu


def test_unavailable_targets_say_why():
    targets, skipped = devices.plan_targets("cpu", ["onnxruntime"], precision="fp16")
    assert targets == [] and skipped[0][1] == "no fp16 export (it offers fp32, int8)"
    assert all(reason is None or "\n" not in reason for _, reason in devices.target_status())
