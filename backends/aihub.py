"""Qualcomm AI Hub: real Snapdragon phones, laptops and boards in a hosted farm, reached with the `qai-hub` client.

A target is `aihub-tflite|aihub-onnx|aihub-qnn` on `aihub:<device name>` (`harness devices --aihub` lists the
farm). The artifact is this harness's own ONNX export (fp32, or the int8 QDQ model calibrated on the precision
work's photographs), so the same artifact and parity path serve local runs and the farm. For each artifact
and device the service compiles it to the runtime (a compile job), times it on the device (a profile job:
every inference time, and per layer its time and the compute unit that ran it) and runs it once on our input
(an inference job, whose output is the parity check).

Jobs are slow and cost quota, so every job id is written to a ledger beside the artifact the moment it is
submitted: `harness run` again waits on the jobs already there and never submits the same artifact to the same
device twice. A job the service fails (an op the device's compiler refused) raises FarmJobFailed with the
service's own message, which the run stores; it stays in the ledger, so a rerun reports it again for free.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .base import Backend, RemoteTiming, module_version
from .onnx_export import INPUT_NAME
from .onnxruntime_backend import OnnxRuntimeBackend

FAMILY = "aihub"
# this harness's backend -> the service's --target_runtime
RUNTIMES = {"aihub-tflite": "tflite", "aihub-onnx": "onnx", "aihub-qnn": "qnn_context_binary"}
# the device attribute that says a device offers a runtime (qai_hub.Device's documented attributes)
FRAMEWORKS = {"aihub-tflite": "framework:tflite", "aihub-onnx": "framework:onnx", "aihub-qnn": "framework:qnn"}
LEDGER = "aihub-jobs.json"
WAIT_S = 4 * 3600  # a job may queue for a device a long time
PROFILE_ITERATIONS = 100
NO_TOKEN = ("no Qualcomm AI Hub token is configured: run `qai-hub configure --api_token YOUR_TOKEN` (the token is on "
            "your account's settings page at app.aihub.qualcomm.com)")


class FarmJobFailed(RuntimeError):
    """A job the service ran and failed: its message is the finding (e.g. an op the compiler refused)."""


class FarmJobPending(RuntimeError):
    """A job still queued or running when this sweep stopped waiting: the ledger keeps it for the next one."""


def client_reason() -> str | None:
    """None when the qai-hub client is installed and has a token, else the one sentence that says what to do."""
    try:
        from qai_hub.api_utils import get_config_path
    except ImportError:
        return "the qai-hub client is not installed: pip install 'fastvit-harness[aihub]'"
    if not os.path.isfile(get_config_path(expanduser=True)):
        return NO_TOKEN
    return None


def device_name(device: str) -> str:
    """'aihub:Samsung Galaxy S24 (Family)' -> 'Samsung Galaxy S24 (Family)'."""
    return device.split(":", 1)[1] if device.startswith(f"{FAMILY}:") else ""


@dataclass
class FarmDevice:
    name: str
    os: str
    chipset: str
    runtimes: list[str]  # this harness's aihub-* backends the device offers
    attributes: list[str] = field(default_factory=list)


def farm_devices(client=None) -> list[FarmDevice]:
    """Every device the farm offers, with its chipset, OS and the runtimes it takes."""
    import qai_hub

    client = client or qai_hub.Client()
    found = []
    for d in client.get_devices():
        attributes = list(d.attributes) if not isinstance(d.attributes, str) else [d.attributes]
        chipset = next((a.split(":", 1)[1] for a in attributes if a.startswith("chipset:")), "")
        found.append(FarmDevice(d.name, d.os, chipset, [b for b, f in FRAMEWORKS.items() if f in attributes],
                                attributes))
    return sorted(found, key=lambda d: d.name)


class Ledger:
    """The jobs submitted for one artifact, per (runtime, device): a JSON file beside the artifact, rewritten
    whole after every submission, so an interrupted sweep resumes instead of paying again."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, dict[str, str]] = json.loads(path.read_text()) if path.is_file() else {}

    def get(self, key: str, kind: str) -> str | None:
        return self.entries.get(key, {}).get(kind)

    def put(self, key: str, kind: str, job_id: str) -> None:
        self.entries.setdefault(key, {})[kind] = job_id
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(self.entries, indent=1))
        partial.replace(self.path)


@dataclass
class FarmProfile:
    """What the farm reported for one artifact on one device (RemoteTiming.tool_result)."""
    device: str
    runtime: str
    jobs: dict[str, str]  # compile / profile / inference -> job id
    urls: dict[str, str]
    profile: dict  # qai_hub's ProfileJob.download_profile(): execution_summary, execution_detail
    output: np.ndarray | None  # the inference job's output on our input (parity), None where it returned none
    device_facts: dict = field(default_factory=dict)  # name, os, chipset, attributes
    resumed: list[str] = field(default_factory=list)  # jobs found in the ledger rather than submitted now


class AIHubBackend(Backend):
    devices = (FAMILY,)
    artifact_name = OnnxRuntimeBackend.artifact_name
    # fp16: the fp32 ONNX compiled with --quantize_full_type float16 (the option qai-hub-models uses for fp16)
    precisions = ("fp32", "fp16", "int8")
    timing = "the device's own profiler (Qualcomm AI Hub profile job), per inference"
    farm = True
    remote_takes_example = True  # and precision=

    def __init__(self, name: str):
        self.name = name
        self.runtime = RUNTIMES[name]
        self._onnx = OnnxRuntimeBackend()

    def unavailable_reason(self, device: str) -> str | None:
        if not device_name(device):
            return (f"name the device: --device '{FAMILY}:Samsung Galaxy S24 (Family)' "
                    "(`harness devices --aihub` lists the farm)")
        return client_reason() or self._onnx.unavailable_reason("cpu")

    def versions(self) -> dict[str, str]:
        return {"qai-hub": module_version("qai-hub") or "?", **self._onnx.versions()}

    def export(self, model, example, out_dir: Path, precision: str = "fp32", calibration=None) -> Path:
        """fp32 and fp16: the fp32 ONNX (AI Hub casts it when it compiles); int8: the calibrated QDQ ONNX."""
        return self._onnx.export(model, example, out_dir, "fp32" if precision == "fp16" else precision, calibration)

    def precision_coverage(self, artifact: Path):
        return self._onnx.precision_coverage(artifact)

    def is_remote(self, device: str) -> bool:
        return True

    def load(self, model, artifact, device, threads, precision="fp32"):
        """The same artifact on this host's CPU (ONNX Runtime): the agreement check on photographs runs here."""
        return self._onnx.load(model, artifact, "cpu", threads, precision)

    def time_remote(self, artifact: Path, device: str, threads: int, policy, example: np.ndarray | None = None,
                    precision: str = "fp32", client=None, **options: str) -> RemoteTiming:
        import qai_hub

        client = client or qai_hub.Client()
        name = device_name(device)
        target = qai_hub.Device(name)
        ledger, key = Ledger(artifact.parent / LEDGER), f"{self.runtime}|{name}"
        resumed: list[str] = []

        def job(kind: str, submit):
            found = ledger.get(key, kind)
            if found:
                resumed.append(kind)
                return client.get_job(found)
            submitted = submit()
            ledger.put(key, kind, submitted.job_id)
            return submitted

        shape = tuple(example.shape) if example is not None else None
        compiled = job("compile", lambda: client.submit_compile_job(
            model=str(artifact), device=target, name=f"fastvit-harness {artifact.parent.name[:12]}",
            input_specs={INPUT_NAME: shape} if shape else None, options=self.compile_options(precision)))
        # the service names the compiled model as it accepts the job: profile and inference queue behind it
        target_model = compiled.get_target_model()
        if target_model is None:  # an older service answer: the model exists once the compile ends
            self._finished(compiled, "compile")
            target_model = compiled.get_target_model()
        profiled = job("profile", lambda: client.submit_profile_job(
            model=target_model, device=target, options=f"--max_profiler_iterations {PROFILE_ITERATIONS}"))
        inferred = None
        if example is not None:
            inferred = job("inference", lambda: client.submit_inference_job(
                model=target_model, device=target, inputs={INPUT_NAME: [np.ascontiguousarray(example)]}))
        self._finished(compiled, "compile")
        self._finished(profiled, "profile")
        output = None
        if inferred is not None:
            self._finished(inferred, "inference")
            data = inferred.download_output_data() or {}
            if data:
                output = np.asarray(next(iter(data.values()))[0], dtype=np.float32)
        jobs = {"compile": compiled, "profile": profiled, **({"inference": inferred} if inferred else {})}
        facts = next((vars(d) for d in farm_devices(client) if d.name == name), {"name": name})
        result = FarmProfile(name, self.runtime, {k: j.job_id for k, j in jobs.items()},
                             {k: j.url for k, j in jobs.items()}, profiled.download_profile(), output, facts, resumed)
        return RemoteTiming(tool_result=result, device_facts=facts)

    def compile_options(self, precision: str) -> str:
        options = f"--target_runtime {self.runtime}"
        # the inputs and outputs stay float32 (no --quantize_io): the same input as every other target
        return options + (" --quantize_full_type float16" if precision == "fp16" else "")

    @staticmethod
    def _finished(job, kind: str) -> None:
        """Wait for `job`; FarmJobFailed with the service's message when it failed. A failed job stays in the
        ledger: a later sweep reports the same failure without paying for it again (delete the ledger file
        beside the artifact to submit afresh)."""
        try:
            status = job.wait(timeout=WAIT_S)
        except TimeoutError:
            raise FarmJobPending(f"AI Hub {kind} job {job.job_id} has not finished after {WAIT_S / 3600:g} h "
                                 f"({job.url}); `harness run` again resumes waiting on it and submits nothing twice"
                                 ) from None
        if not status.success:
            raise FarmJobFailed(f"AI Hub {kind} job {job.job_id} {status.code.lower()}: "
                                f"{status.message or 'no message'} ({job.url})")
