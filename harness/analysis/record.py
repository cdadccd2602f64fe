"""The record: per claim and kind of device (phone NPU, phone CPU/GPU, desktop GPU, desktop CPU), on how many devices
it holds, does not hold, holds under some protocols and not others, or cannot be judged, counting every device
anyone has numbers of: measured here, imported from vendor logs, published (timm's tables, AI Hub, Apple's)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .claims import Check

FABRICS = ("phone NPU", "phone CPU/GPU", "desktop GPU", "desktop CPU", "other")
VERDICTS = ("holds", "does not hold", "mixed", "cannot be judged")


def fabric_of(device: str, target: str) -> str:
    """What kind of device a check ran on, from its device and target."""
    if device in ("gpu", "intel-gpu"):
        return "desktop GPU"
    if device == "cpu":
        return "desktop CPU"
    if device.startswith(("iphone", "mac:ane", "aihub:")) or target.startswith("coreml/iphone"):
        return "phone NPU"  # Apple's Neural Engine; AI Hub's devices run on their NPU first
    if device.startswith("android"):
        return "phone CPU/GPU"  # LiteRT on the phone's CPU (XNNPACK) or GPU delegate
    return "other"


@dataclass
class Device:
    """One device's checks of one claim: every protocol it was judged under."""
    host: str
    device: str
    origin: str
    checks: list[Check] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.host.removeprefix("published: ") if self.origin == "published" else (
            f"{self.host} {self.device}" if self.device not in self.host else self.host)

    @property
    def verdict(self) -> str:
        decided = {c.verdict for c in self.checks if c.verdict != "not enough data"}
        if not decided:
            return "cannot be judged"
        return decided.pop() if len(decided) == 1 else "mixed"


@dataclass
class RecordCell:
    claim: str  # its key
    fabric: str
    devices: dict[str, list[Device]] = field(default_factory=dict)  # verdict -> devices, in VERDICTS order

    def count(self, verdict: str) -> int:
        return len(self.devices.get(verdict, []))


def record(checks: list[Check]) -> list[RecordCell]:
    """Per claim between two architectures and fabric with a device, its devices by verdict."""
    per_device: dict[tuple, Device] = {}
    for c in checks:
        if c.target == "—" or c.claim.fast == c.claim.slow:  # never tried; the fused-vs-training premise
            continue
        found = per_device.setdefault((c.claim.key, fabric_of(c.device, c.target), c.host, c.device),
                                      Device(c.host, c.device, c.origin))
        found.checks.append(c)
    cells: dict[tuple[str, str], RecordCell] = {}
    for (claim, fabric, _, _), device in per_device.items():
        cell = cells.setdefault((claim, fabric), RecordCell(claim, fabric))
        cell.devices.setdefault(device.verdict, []).append(device)
    order = {key: i for i, key in enumerate(dict.fromkeys(c.claim.key for c in checks))}
    for cell in cells.values():
        cell.devices = {v: sorted(cell.devices[v], key=lambda d: d.name) for v in VERDICTS if v in cell.devices}
    return sorted(cells.values(), key=lambda c: (order[c.claim], FABRICS.index(c.fabric)))
