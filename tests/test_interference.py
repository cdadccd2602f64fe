"""Interference: what else used the CPU while a run was timed, from the kernel's counters."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.measure import child, interference
from harness.measure.interference import Snapshot
from harness.protocol import Job, TimingPolicy
from harness.spec import ModelSpec, Target

linux_only = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads Linux's /proc counters")


def test_other_processes_work_is_the_machines_minus_our_own():
    before = Snapshot(wall_s=10.0, busy_s=100.0, steal_s=1.0, own_s=20.0, load=0.5, throttle_events=3, mhz=2000.0)
    after = Snapshot(wall_s=12.0, busy_s=105.0, steal_s=1.2, own_s=23.0, load=1.5, throttle_events=3, mhz=2200.0)
    found = interference.between(before, after)
    assert found.other_cpu == pytest.approx(1.0)  # (5 - 3) core-seconds of others' work in 2 s
    assert found.steal == pytest.approx(0.1) and found.throttle_events == 0 and found.mhz == 2100.0
    assert found.noisy()  # one core's worth of others > 0.25
    assert not found.noisy(max_other_cpu=1.5, max_steal=0.2)
    assert interference.between(before, None) is None


@linux_only
def test_a_snapshot_reads_this_process_and_the_machine():
    first = interference.snapshot()
    sum(i * i for i in range(2_000_000))  # spend some CPU here
    second = interference.snapshot()
    assert second.own_s > first.own_s and second.busy_s >= first.busy_s and second.load >= 0


def _job(tmp_path) -> Job:
    policy = TimingPolicy(warmup_iterations=2, warmup_seconds=0.5, min_iterations=10, min_seconds=3.0)
    return Job(ModelSpec("t8", 64), Target("torch", "cpu"), 1, policy, str(tmp_path / "cache"))


@linux_only
def test_a_run_beside_a_cpu_hog_is_noisy_and_one_alone_is_not(tmp_path):
    alone = child.measure_in_child(_job(tmp_path), timeout_s=300)
    hogs = [subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 30\nwhile time.time() < end: pass"])
            for _ in range(len(os.sched_getaffinity(0)))]
    try:
        busy = child.measure_in_child(_job(tmp_path), timeout_s=300)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert alone.status == busy.status == "ok"
    assert not alone.noisy, alone.interference
    assert busy.noisy and busy.interference.other_cpu > 0.5, busy.interference


@linux_only
def test_doctor_reports_the_isa_and_the_load():
    import json
    import platform

    from typer.testing import CliRunner

    from harness.cli import app

    result = CliRunner().invoke(app, ["doctor", "--window", "0.2", "--format", "json"])
    assert result.exit_code == 0, result.output
    found = {row["item"]: row for row in json.loads(result.stdout)}
    assert {"CPU", "ISA", "load (1 min)", "other CPU use now (0.2 s)", "hypervisor steal now"} <= set(found)
    if platform.machine() in ("x86_64", "AMD64"):
        assert "avx2" in found["ISA"]["value"]  # every x86-64 CPU this harness targets has it
    assert "usable cores" in found["load (1 min)"]["value"]
