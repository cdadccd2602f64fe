"""What else used the machine while a run was timed, read from the kernel's own counters.

Linux: /proc/stat (all CPUs' busy and steal time), /proc/self/stat (this process, all its threads:
the runtime being timed), /proc/loadavg, cpufreq and thermal-throttle counters where readable. Elsewhere
the probe returns None and runs carry no interference figures (not zeros).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..protocol import Interference

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100



@dataclass(frozen=True)
class Snapshot:
    wall_s: float
    busy_s: float  # all CPUs: user + nice + system + irq + softirq
    steal_s: float
    own_s: float  # this process, all threads: utime + stime
    load: float  # 1-minute load average
    throttle_events: int | None  # thermal throttling events so far, all CPUs (Intel)
    mhz: float | None  # mean current frequency of the CPUs this process may use


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def snapshot() -> Snapshot | None:
    stat, own = _read("/proc/stat"), _read("/proc/self/stat")
    if stat is None or own is None:
        return None
    cpu = [int(v) for v in stat.splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (cpu + [0] * 8)[:8]
    # fields after the ")" that ends the command name: utime and stime are the 12th and 13th
    fields = own.rsplit(")", 1)[1].split()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    throttles = [_read(f"/sys/devices/system/cpu/cpu{c}/thermal_throttle/core_throttle_count") for c in cpus]
    freqs = [_read(f"/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_cur_freq") for c in cpus]
    return Snapshot(
        wall_s=time.monotonic(), busy_s=(user + nice + system + irq + softirq) / TICK, steal_s=steal / TICK,
        own_s=(int(fields[11]) + int(fields[12])) / TICK, load=os.getloadavg()[0],
        throttle_events=sum(int(t) for t in throttles if t) if any(throttles) else None,
        mhz=sum(int(f) for f in freqs if f) / 1000 / len([f for f in freqs if f]) if any(freqs) else None)


def between(before: Snapshot | None, after: Snapshot | None) -> Interference | None:
    if before is None or after is None or after.wall_s <= before.wall_s:
        return None
    wall = after.wall_s - before.wall_s
    other = (after.busy_s - before.busy_s) - (after.own_s - before.own_s)
    throttled = (after.throttle_events - before.throttle_events
                 if after.throttle_events is not None and before.throttle_events is not None else None)
    mhz = [m for m in (before.mhz, after.mhz) if m]
    return Interference(other_cpu=max(other, 0.0) / wall, steal=(after.steal_s - before.steal_s) / wall,
                        load_before=before.load, load_after=after.load, throttle_events=throttled,
                        mhz=sum(mhz) / len(mhz) if mhz else None)
