"""A hosted farm's report (backends.aihub.FarmProfile) as a run: every inference the device timed as a sample,
each layer's time as an op profile row in this harness's op classes, the compute unit of every layer (NPU, GPU,
CPU) as the run's coverage, the load times and memory as its footprint, the jobs and their links, and the
device's own facts as the host the run is stored under."""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from ..opclass import op_class
from ..protocol import Footprint, OpRow, RunResult
from ..stats import Summary, summarize

UNITS = ("NPU", "GPU", "CPU")
FARM_TIMEOUT_S = 6 * 3600  # a worker waiting on a farm's queue (backends.aihub waits 4 h per job)


def is_farm(device: str) -> bool:
    return device.startswith("aihub:")


def _ms(microseconds) -> float | None:
    return microseconds / 1e3 if isinstance(microseconds, (int, float)) and microseconds > 0 else None


def compute_units(detail: list[dict], class_flops: dict[str, int] | None = None) -> dict[str, dict]:
    """Per compute unit: how many layers ran there, their share of the layers, their milliseconds per inference
    and, given the model's FLOPs per op class, an estimate of its share of the FLOPs (each op class's FLOPs
    split over the units its layers ran on, by layer count: the farm names layers, not their FLOPs)."""
    found: dict[str, dict] = {}
    per_class: dict[str, dict[str, int]] = {}  # op class -> unit -> layers
    for layer in detail:
        unit_name = layer.get("compute_unit") or "UNSPECIFIED"
        unit = found.setdefault(unit_name, {"layers": 0, "ms": 0.0})
        unit["layers"] += 1
        unit["ms"] += (layer.get("execution_time") or 0) / 1e3
        cls = per_class.setdefault(op_class(str(layer.get("type", ""))), {})
        cls[unit_name] = cls.get(unit_name, 0) + 1
    total = sum(u["layers"] for u in found.values())
    flops = {cls: value for cls, value in (class_flops or {}).items() if cls in per_class and value}
    all_flops = sum(flops.values())
    for name, unit in found.items():
        unit["share"] = unit["layers"] / total if total else None
        if all_flops:
            unit["flops_share"] = sum(value * per_class[cls].get(name, 0) / sum(per_class[cls].values())
                                      for cls, value in flops.items()) / all_flops
    return dict(sorted(found.items(), key=lambda kv: (kv[0] not in UNITS, UNITS.index(kv[0]) if kv[0] in UNITS
                                                       else 0, kv[0])))


def farm_host(name: str, facts: dict) -> dict:
    """A farm's device as a host: its name, chipset and OS (the same device is the same host in every database)."""
    return {"hostname": f"aihub:{name}", "cpu_model": facts.get("chipset") or "unknown chipset",
            "logical_cores": None, "os": facts.get("os") or "unknown", "machine": "aihub", "isa": ""}


@lru_cache(maxsize=None)
def _farm_facts(name: str) -> tuple:
    from backends.aihub import farm_devices

    try:
        found = next((d for d in farm_devices() if d.name == name), None)
    except Exception:  # the service is unreachable: the run is still the device's, with what is known
        found = None
    return tuple(sorted(vars(found).items())) if found else ()


def device_host(device: str) -> dict:
    """The host a farm target's runs are stored under (asked of the farm once per process)."""
    name = device.split(":", 1)[1]
    return farm_host(name, dict(_farm_facts(name)))


def _range_mb(found) -> list[float] | None:
    """A (lower, upper) range in bytes as MiB; None where the profile has none."""
    if isinstance(found, (tuple, list)) and len(found) == 2 and all(isinstance(v, (int, float)) for v in found):
        return [found[0] / 2**20, found[1] / 2**20]
    return None


def _peak_mb(summary: dict) -> float | None:
    """The model's peak memory while it ran: the upper end of `inference_memory_peak_range` (what qai-hub-models
    reads); only a profile without it falls back on the deprecated `estimated_inference_peak_memory`."""
    found = _range_mb(summary.get("inference_memory_peak_range"))
    if found and found[1] > 0:
        return found[1]
    peak = summary.get("estimated_inference_peak_memory")
    return peak / 2**20 if isinstance(peak, (int, float)) and peak > 0 else None


def take_farm_profile(result: RunResult, profile) -> None:
    """Fill `result` from the farm's profile (the worker's remote path)."""
    summary = profile.profile.get("execution_summary") or {}
    detail = profile.profile.get("execution_detail") or []
    times_us = [t for t in summary.get("all_inference_times") or [] if isinstance(t, (int, float)) and t > 0]
    if times_us:
        result.samples_ns = [int(t * 1e3) for t in times_us]
        result.summary = summarize(result.samples_ns)
    elif _ms(summary.get("estimated_inference_time")) is not None:  # an older profile: one figure, no samples
        result.summary = Summary(count=None, median_ms=_ms(summary.get("estimated_inference_time")))
    result.op_profile = [OpRow(op_name=str(layer.get("name", ""))[:255], op_type=str(layer.get("type", "")),
                               op_class=op_class(str(layer.get("type", ""))), calls=1,
                               total_ms=(layer.get("execution_time") or 0) / 1e3,
                               compute_unit=layer.get("compute_unit"))
                         for layer in detail if layer.get("execution_time") is not None]
    theirs = Footprint(load_ms=_ms(summary.get("first_load_time")), load_warm_ms=_ms(summary.get("warm_load_time")),
                       model_peak_mb=_peak_mb(summary))
    result.footprint = replace(result.footprint, load_ms=theirs.load_ms, load_warm_ms=theirs.load_warm_ms,
                               model_peak_mb=theirs.model_peak_mb) if result.footprint else theirs
    result.environment.update(
        tool="qualcomm-ai-hub", aihub_runtime=profile.runtime, aihub_jobs=profile.jobs, aihub_urls=profile.urls,
        aihub_resumed=profile.resumed, aihub_retried=getattr(profile, "retried", []),
        aihub_repeat=getattr(profile, "repeat", 0), device=profile.device_facts,
        compute_units=compute_units(detail, result.class_flops), compile_ms=_ms(summary.get("compile_time")),
        # the service's own figure, the statistic qai-hub-models publishes, beside the median of every time
        aihub_estimated_ms=_ms(summary.get("estimated_inference_time")),
        aihub_memory_peak_range_mb=_range_mb(summary.get("inference_memory_peak_range")),
        op_profile_statistic="minimum per layer over the profiled inferences (AI Hub's execution_time)")
