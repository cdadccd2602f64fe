"""Device names, the targets each backend offers on them, and how many threads a run may use."""
from __future__ import annotations

from backends import BACKENDS

from ..spec import Target
from .environment import usable_cores

# What --device accepts: a family, or one exact device ("mac:ane", "android:<serial>").
DEVICE_FAMILIES = ("cpu", "gpu", "intel-gpu", "npu", "mac", "android")
DEVICE_HELP = ("cpu, gpu, intel-gpu, npu, mac, mac:cpu|gpu|ane|all, android, android:<serial>, "
               "aihub:<device name> (Qualcomm AI Hub; harness devices --aihub)")
PHONE_THREADS = 4  # the usual big-core count of a phone; --threads runs there, not on this host


def all_targets() -> list[Target]:
    return [Target(b.name, d) for b in BACKENDS.values() for d in b.devices]


def check_device(device: str) -> str:
    """The device name if it is one --device accepts, else ValueError listing the choices."""
    known = {t.device for t in all_targets()}
    if device in DEVICE_FAMILIES or device in known:
        return device
    if device.startswith(("android:", "aihub:")) and len(device.split(":", 1)[1].strip()) > 0:
        return device
    raise ValueError(f"unknown device {device!r}; choose one of: {DEVICE_HELP}")


def is_phone(device: str) -> bool:
    """A device whose threads are not this host's: a phone over adb, or a hosted farm's device."""
    return device == "android" or device.startswith(("android:", "aihub:"))


def threads_for(device: str, threads: int | None) -> int:
    """Threads per runtime on `device`: all usable cores by default, and never more than that on this
    host (a phone's threads run on the phone). ValueError for a count this host cannot give."""
    if is_phone(device):
        return threads or PHONE_THREADS
    cores = usable_cores()
    if threads and threads > cores:
        raise ValueError(f"--threads {threads} exceeds the {cores} cores this process may use")
    return threads or cores


def _selects(requested: str, device: str) -> str | None:
    """The concrete device a backend device stands for under --device `requested`, or None."""
    if requested == device:
        return device
    if requested == "mac" and device.startswith("mac:"):
        return device
    if device == "android" and requested.startswith("android:"):
        return requested  # keep the serial
    if device == "aihub" and requested.startswith("aihub:"):
        return requested  # keep the farm's device name
    return None


def target_status() -> list[tuple[Target, str | None]]:
    """Every known target with None (available) or the one-line reason it is not."""
    return [(t, BACKENDS[t.backend].unavailable_reason(t.device)) for t in all_targets()]


def plan_targets(device: str, backends: list[str] | None, precision: str = "fp32", delegate: str = "xnnpack",
                 compile_mode: str | None = None, keep_float: str = "") -> tuple[list[Target], list[tuple[Target, str]]]:
    """(targets to run, [(target, reason skipped)]) on `device`, optionally narrowed to `backends`.
    compile_mode: torch.compile's mode for torch-compile targets (None: the device's default). keep_float: a
    mixed int8 recipe, which only backends whose quantizer leaves chosen ops in float can make."""
    runnable, skipped = [], []
    for candidate in all_targets():
        concrete = _selects(device, candidate.device)
        if concrete is None or (backends and candidate.backend not in backends):
            continue
        backend = BACKENDS[candidate.backend]
        options = f"delegate={delegate}" if backend.is_remote(concrete) and not backend.farm else ""
        if "mode" in backend.option_names:
            options = backend.target_options(concrete, {"mode": compile_mode} if compile_mode else {})
        target = Target(candidate.backend, concrete, options)
        reason = backend.unavailable_reason(concrete)
        if reason is None and precision not in backend.precisions:
            reason = f"no {precision} export (it offers {', '.join(backend.precisions)})"
        reason = reason or backend.precision_reason(concrete, precision)
        if reason is None and keep_float and not backend.keeps_float:
            reason = "its int8 quantizer cannot keep chosen ops in float (--keep-float)"
        (skipped.append((target, reason)) if reason else runnable.append(target))
    return runnable, skipped


def local_targets(targets: list[Target]) -> list[Target]:
    """The targets this host runs itself (not through a vendor tool on an attached device)."""
    return [t for t in targets if not BACKENDS[t.backend].is_remote(t.device)]
