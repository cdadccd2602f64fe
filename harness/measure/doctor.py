"""`harness doctor`: what on this machine will move a number, read from the OS, with advice (in the
spirit of `pyperf system show`). Every check says what it read; where it cannot read, it says so."""
from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from . import interference
from .environment import cpu_model, isa, usable_cores

# The instruction-set features that change which kernels a runtime picks (and what "fp32" means).
CPU = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class Finding:
    item: str
    value: str
    advice: str = ""  # empty: nothing to do


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _isa_finding() -> Finding:
    found = isa()
    advice = ""
    if {"avx512_bf16", "amx_bf16"} & set(found):
        advice = ("this CPU computes bf16 natively: OpenVINO (and benchmark_app by default) run bf16 here; the harness "
                  "times f32, so compare it with benchmark_app -infer_precision f32")
    return Finding("ISA", " ".join(found) or "unknown", advice)


def _governor() -> Finding:
    governor = _read(CPU / "cpu0/cpufreq/scaling_governor")
    if governor is None:
        return Finding("CPU governor", "not exposed (a VM, or no cpufreq driver)")
    advice = "" if governor == "performance" else "sudo cpupower frequency-set -g performance"
    return Finding("CPU governor", governor, advice)


def _turbo() -> Finding:
    no_turbo, boost = _read(CPU / "intel_pstate/no_turbo"), _read(CPU / "cpufreq/boost")
    if no_turbo is None and boost is None:
        return Finding("turbo / boost", "not exposed")
    on = no_turbo == "0" if no_turbo is not None else boost == "1"
    return Finding("turbo / boost", "on" if on else "off",
                   "turbo ties the clock to temperature: turn it off for comparisons across runs" if on else "")


def _smt() -> Finding:
    active = _read(CPU / "smt/active")
    if active is None:
        return Finding("SMT (hyper-threading)", "not exposed")
    return Finding("SMT (hyper-threading)", "on" if active == "1" else "off",
                   "two threads may share one core: use --threads <= physical cores" if active == "1" else "")


def _isolated() -> Finding:
    isolated = _read(CPU / "isolated")
    if isolated is None:
        return Finding("isolated CPUs", "not exposed")
    return Finding("isolated CPUs", isolated or "none",
                   "" if isolated else "isolcpus= on the kernel command line keeps other work off the timed cores")


def _load_and_steal(window_s: float) -> list[Finding]:
    cores = usable_cores()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    findings = []
    if load is not None:
        busy = load > 0.5
        findings.append(Finding("load (1 min)", f"{load:.2f} on {cores} usable cores",
                                "other work is running: numbers taken now will be noisy" if busy else ""))
    before = interference.snapshot()
    time.sleep(window_s)
    now = interference.between(before, interference.snapshot())
    if now is not None:
        findings.append(Finding(f"other CPU use now ({window_s:g} s)", f"{now.other_cpu:.2f} cores",
                                "close other programs before timing" if now.other_cpu > 0.25 else ""))
        findings.append(Finding("hypervisor steal now", f"{now.steal:.3f} cores",
                                "a VM whose host gives CPU time to other guests: expect noisy runs, use --repeats"
                                if now.steal > 0.01 else ""))
    return findings


def _thermal() -> Finding:
    temps = [int(t) / 1000 for p in sorted(Path("/sys/class/thermal").glob("thermal_zone*/temp"))
             if (t := _read(p)) and t.lstrip("-").isdigit()]
    throttles = [int(t) for p in CPU.glob("cpu*/thermal_throttle/core_throttle_count") if (t := _read(p))]
    if not temps and not throttles:
        return Finding("thermal", "not exposed")
    value = (f"max {max(temps):.0f} °C" if temps else "") + (f", {sum(throttles)} throttle events" if throttles else "")
    return Finding("thermal", value.strip(", "), "the CPU has throttled: cool down or lower the load"
                   if throttles and sum(throttles) else "")


def _power() -> Finding:
    profile = _read(Path("/sys/firmware/acpi/platform_profile"))
    on_battery = any(_read(p) == "0" for p in Path("/sys/class/power_supply").glob("A*/online"))
    if profile is None and not on_battery:
        return Finding("power mode", "not exposed")
    value = ", ".join(filter(None, [profile, "on battery" if on_battery else None]))
    advice = "plug in and choose the performance profile" if on_battery or profile in ("low-power", "quiet") else ""
    return Finding("power mode", value, advice)


def _phones() -> list[Finding]:
    from backends import adb

    try:
        serials = adb.attached_phones()
    except adb.AdbError as exc:
        return [Finding("Android phones", str(exc))]
    findings = []
    for serial in serials:
        try:
            phone = adb.Phone(serial)
            status = phone.thermal_status()
            saver = phone.shell("settings", "get", "global", "low_power").strip()
        except adb.AdbError as exc:
            findings.append(Finding(f"phone {serial}", f"cannot read: {exc}"))
            continue
        findings.append(Finding(f"phone {serial}", f"thermal status {status}, battery saver {saver or 'unknown'}",
                                "let it cool (thermal status > 0) and turn battery saver off" if (status or 0) > 0
                                or saver == "1" else ""))
    return findings or [Finding("Android phones", "none attached")]


def checks(window_s: float = 0.5) -> list[Finding]:
    return [Finding("CPU", f"{cpu_model()} ({platform.machine()})"), _isa_finding(), _governor(), _turbo(), _smt(),
            _isolated(), *_load_and_steal(window_s), _thermal(), _power(), *_phones()]
