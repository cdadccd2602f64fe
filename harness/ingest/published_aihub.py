"""Qualcomm AI Hub's published latencies of this harness's baselines, as published tables.

`qai-hub-models` ships, per model, a `perf.yaml` of AI Hub profile jobs on real Snapdragon devices: per
precision (float, w8a8, ...), device and runtime (tflite, onnx, qnn_dlc), the median inference time, the job
that measured it, its status, and how many layers ran on the NPU, GPU and CPU. Each passed job becomes a
table of one latency, cited with the package version, the file and the job (whose page is its URL), stored by
`harness published --aihub` on a host named after the device, with the target an AI Hub run of this harness
gets (`aihub-tflite/aihub:Samsung Galaxy S24`), so `harness compare` sets them beside FastViT there.

The files are read from an installed `qai-hub-models` (found without importing it: it pulls a model zoo's
dependencies), its wheel, or an unpacked copy of either; nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
import re
import zipfile
from pathlib import Path

import yaml

from .. import baselines
from .published import Table

# AI Hub's runtime names -> this harness's backends; its precisions -> the artifact's precision here
# perf.yaml's runtime -> the target it lands on: a QNN DLC is not the QNN context binary `aihub-qnn` compiles, so it
# is a target of its own (no harness backend makes DLCs: its figures stand beside, never pair with, measured ones)
RUNTIMES = {"tflite": "aihub-tflite", "onnx": "aihub-onnx", "qnn_dlc": "aihub-qnn-dlc"}
# perf.yaml's precision -> the run's: w8a8 is AI Hub's own quantize job (int8 weights and activations, integer I/O),
# another recipe than this harness's ONNX Runtime QDQ model (`int8`), so it keeps its own name and column
PRECISIONS = {"float": "fp32", "w8a8": "w8a8"}
PACKAGE = "qai_hub_models"


class ZooMissing(ValueError):
    pass


class _Source:
    """Files of the qai_hub_models package: a directory (installed or unpacked) or a wheel."""

    def __init__(self, where: Path):
        self.where = where
        self.wheel = zipfile.ZipFile(where) if where.is_file() else None

    def read(self, relative: str) -> str | None:
        try:
            if self.wheel is not None:
                return self.wheel.read(f"{PACKAGE}/{relative}").decode()
            return (self.where / relative).read_text()
        except (KeyError, OSError):
            return None


def installed() -> Path | None:
    """The installed qai_hub_models package's directory, found without running it."""
    spec = importlib.util.find_spec(PACKAGE)
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def _version(source: _Source) -> str:
    text = source.read("_version.py") or ""
    found = re.search(r"__version__\s*=\s*(?:version\s*=\s*)?['\"]([^'\"]+)", text)
    return found.group(1) if found else "unknown version"


def _resolution(source: _Source, name: str) -> int | None:
    manifest = yaml.safe_load(source.read(f"models/{name}/manifest.yaml") or "{}") or {}
    text = str((manifest.get("technical_details") or {}).get("Input resolution", ""))
    found = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", text)
    return int(found.group(1)) if found and found.group(1) == found.group(2) else None


def tables(where: Path | None = None, devices: list[str] | None = None) -> list[Table]:
    """Every passed AI Hub job of every baseline qai-hub-models profiles, one table each (on `devices` only, where
    named). ZooMissing names what to install or pass when there is no package (or no baseline in it); ValueError
    names a device the files hold nothing for."""
    where = where or installed()
    if where is None or not where.exists():
        raise ZooMissing("no qai-hub-models to read: `pip install qai-hub-models` (only its perf.yaml files are "
                         "read), or pass its wheel or folder with --aihub-models")
    source = _Source(where)
    version = _version(source)
    found: list[Table] = []
    for baseline in baselines.BASELINES.values():
        name = baseline.timm_name
        text = source.read(f"models/{name}/perf.yaml")
        if text is None:
            continue
        resolution = _resolution(source, name)
        for precision, per_precision in (yaml.safe_load(text).get("precisions") or {}).items():
            if precision not in PRECISIONS:
                continue
            for component in (per_precision.get("components") or {}).values():
                for device, runtimes in (component.get("performance_metrics") or {}).items():
                    for runtime, job in (runtimes or {}).items():
                        if runtime not in RUNTIMES or job.get("job_status") != "Passed":
                            continue
                        found.append(_table(version, name, resolution, PRECISIONS[precision], device, runtime, job))
    if not found:
        raise ZooMissing(f"{where} holds no AI Hub profile of {', '.join(baselines.BASELINES)} (qai-hub-models "
                         f"{version})")
    if devices:
        known = sorted({t.device for t in found})
        unknown = [d for d in devices if d not in known]
        if unknown:
            raise ValueError(f"no AI Hub figures for {', '.join(unknown)}; the files hold {', '.join(known)}")
        found = [t for t in found if t.device in devices]
    return found


def _table(version: str, name: str, resolution: int | None, precision: str, device: str, runtime: str,
           job: dict) -> Table:
    counts = job.get("layer_counts") or {}
    units = ", ".join(f"{counts[u]} {u.upper()}" for u in ("npu", "gpu", "cpu") if counts.get(u))
    tools = ", ".join(f"{k} {v}" for k, v in sorted((job.get("tool_versions") or {}).items()))
    citation = (f"qai-hub-models {version}, models/{name}/perf.yaml: Qualcomm AI Hub profile job {job['job_id']} "
                f"({runtime}, {tools}; layers: {units or 'not given'} of {counts.get('total', '?')})")
    return Table(citation=citation, url=f"https://app.aihub.qualcomm.com/jobs/{job['job_id']}/", device=device,
                 chip="Qualcomm AI Hub device", os="n/a", target=f"{RUNTIMES[runtime]}/aihub:{device}",
                 resolution=resolution, form="reparam", latency_ms={baselines.PREFIX + name:
                                                                    float(job["inference_time_milliseconds"])},
                 precision=precision)
