"""Driving an Android phone over adb: which phones are attached, what they are, and commands.

Every adb call is an argument list. `adb shell` joins its arguments into one string that the
phone's shell parses again, so each remote argument is quoted with shlex before it goes there.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

REMOTE_DIR = "/data/local/tmp/fastvit-harness"
SERIAL = re.compile(r"^[A-Za-z0-9._:\-]+$")


class AdbError(RuntimeError):
    """adb is missing, no (or no unique) phone is attached, or a command failed."""


def adb_binary() -> str | None:
    return os.environ.get("ADB") or shutil.which("adb")


def parse_devices(text: str) -> list[str]:
    """Serials in the 'device' state from `adb devices` output (unauthorized/offline ones are skipped)."""
    serials = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] == "device" and not line.startswith("List of devices"):
            serials.append(parts[0])
    return serials


def shell_args(adb: str, serial: str, *remote: str) -> list[str]:
    return [adb, "-s", serial, "shell", " ".join(shlex.quote(str(a)) for a in remote)]


def resolve_serial(device: str, attached: list[str]) -> str:
    """'android' -> the one attached phone; 'android:<serial>' -> that phone, if attached."""
    if device.startswith("android:"):
        serial = device.split(":", 1)[1]
        if not SERIAL.match(serial):
            raise AdbError(f"not a valid adb serial: {serial!r}")
        if serial not in attached:
            raise AdbError(f"phone {serial} is not attached (attached: {', '.join(attached) or 'none'})")
        return serial
    if not attached:
        raise AdbError("no Android phone attached (adb devices lists none in the 'device' state)")
    if len(attached) > 1:
        raise AdbError(f"several phones attached ({', '.join(attached)}); choose one with --device android:<serial>")
    return attached[0]


THERMAL_STATUS = re.compile(r"Thermal Status:\s*(\d+)")


def parse_thermal_status(text: str) -> int | None:
    """`dumpsys thermalservice` -> 0 (none) .. 6 (shutdown), or None when not reported."""
    match = THERMAL_STATUS.search(text)
    return int(match.group(1)) if match else None


class Phone:
    """One attached phone; `run` is injectable so command construction is testable without one."""

    def __init__(self, serial: str, adb: str | None = None, run=None):
        self.serial, self.adb, self._run = serial, adb or adb_binary(), run or subprocess.run
        if not self.adb:
            raise AdbError("adb not found: install Android platform-tools or set $ADB")

    def _call(self, args: list[str], timeout: float = 120) -> str:
        proc = self._run(args, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise AdbError(f"{' '.join(args[:4])} ... failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-300:]}")
        return proc.stdout

    def shell(self, *remote: str, timeout: float = 120) -> str:
        return self._call(shell_args(self.adb, self.serial, *remote), timeout)

    def push(self, local: str, remote: str) -> None:
        self._call([self.adb, "-s", self.serial, "push", str(local), remote], timeout=600)

    def facts(self) -> dict:
        prop = {key: self.shell("getprop", key).strip() for key in (
            "ro.product.manufacturer", "ro.product.model", "ro.soc.model", "ro.board.platform",
            "ro.build.version.release", "ro.build.version.sdk")}
        return {"serial": self.serial, "model": prop["ro.product.model"],
                "manufacturer": prop["ro.product.manufacturer"],
                "soc": prop["ro.soc.model"] or prop["ro.board.platform"],
                "android": prop["ro.build.version.release"], "sdk": prop["ro.build.version.sdk"]}

    def thermal_status(self) -> int | None:
        return parse_thermal_status(self.shell("dumpsys", "thermalservice"))


def attached_phones(run=None) -> list[str]:
    adb = adb_binary()
    if not adb:
        raise AdbError("adb not found (install Android platform-tools or set $ADB)")
    try:
        proc = (run or subprocess.run)([adb, "devices"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise AdbError(f"cannot run {adb}: {exc}") from exc
    if proc.returncode != 0:
        raise AdbError(f"`adb devices` failed: {(proc.stderr or proc.stdout).strip()[-200:]}")
    return parse_devices(proc.stdout)
