"""Qualcomm AI Hub: real Snapdragon phones, laptops and boards in a hosted farm, reached with the `qai-hub` client.

A target is `aihub-tflite|aihub-onnx|aihub-qnn` on `aihub:<device name>` (`harness devices --aihub` lists the
farm). The artifact is this harness's own ONNX export (fp32, or the int8 QDQ model calibrated on the precision
work's photographs), so the same artifact and parity path serve local runs and the farm. For each artifact
and device the service compiles it to the runtime (a compile job), times it on the device (a profile job:
every inference time, and per layer its time and the compute unit that ran it) and runs it once on our input
(an inference job, whose output is the parity check).

Jobs are slow and cost quota. Before any is submitted the device is resolved to the service's own (name and OS) and
its runtimes and the precision checked: a mismatch is refused with no job created. Every job id is written to one
ledger per user (`aihub_ledger.Ledger`, SQLite) keyed by what the service sees (the uploaded model's bytes, the
options, the runtime, the device's name and OS) the moment its submit returns, under a lock on that key: `harness
run` again, after an upgrade of the client or of ONNX Runtime, or beside another run on another device, waits on
the jobs already there and never pays twice. A compile the service refuses is the model's own finding: kept, and
reported again for free (`harness run --retry-failed` forgets it); any other failure (the service's, the device's,
an expired dataset) is forgotten, and the next run submits that job again and says so. One inference job per
measurement both profiles and returns the device's output (the client's `profile=True`): `--repeats N` makes N.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .aihub_ledger import Ledger
from .base import Backend, RemoteTiming, module_version
from .onnx_export import INPUT_NAME
from .onnxruntime_backend import OnnxRuntimeBackend

FAMILY = "aihub"
# this harness's backend -> the service's --target_runtime
RUNTIMES = {"aihub-tflite": "tflite", "aihub-onnx": "onnx", "aihub-qnn": "qnn_context_binary"}
# the device attribute that says a device offers a runtime (qai_hub.Device's documented attributes)
FRAMEWORKS = {"aihub-tflite": "framework:tflite", "aihub-onnx": "framework:onnx", "aihub-qnn": "framework:qnn"}
# the precisions each runtime is compiled to here (fp16: --quantize_full_type float16, which qai-hub-models sends
# for QNN targets only; the float ONNX on tflite or onnx runs in the runtime's own float)
PRECISIONS = {"aihub-tflite": ("fp32", "int8"), "aihub-onnx": ("fp32", "int8"), "aihub-qnn": ("fp32", "fp16", "int8")}
WAIT_S = 4 * 3600  # a job may queue for a device a long time; every wait is bounded by it
PROFILE_ITERATIONS = 100
NO_TOKEN = ("no Qualcomm AI Hub token is configured: run `qai-hub configure --api_token YOUR_TOKEN` (the token is on "
            "your account's settings page at app.aihub.qualcomm.com)")


class FarmJobFailed(RuntimeError):
    """A job the service ran and failed: its message is the finding (e.g. an op the compiler refused)."""


class FarmJobPending(RuntimeError):
    """A job still queued or running when this sweep stopped waiting: the ledger keeps it for the next one."""


class FarmRefused(ValueError):
    """What the farm cannot run, found before any job is submitted (a device it does not have, a runtime the device
    lacks, a precision the runtime is not compiled to here)."""


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


def resolve(client, name: str, backend: str, precision: str):
    """The service's own device named `name` (a qai_hub.Device, with its OS), refused (FarmRefused, nothing
    submitted) where there is none, where it lacks the runtime, or where the runtime is not compiled to `precision`."""
    found = [d for d in client.get_devices(name=name) if d.name == name]
    if not found:
        raise FarmRefused(f"Qualcomm AI Hub has no device named {name!r}; `harness devices --aihub` lists them")
    device = found[0]
    attributes = list(device.attributes) if not isinstance(device.attributes, str) else [device.attributes]
    if FRAMEWORKS[backend] not in attributes:
        offered = [b for b, f in FRAMEWORKS.items() if f in attributes]
        raise FarmRefused(f"{name} does not run {RUNTIMES[backend]} ({FRAMEWORKS[backend]} is not among its "
                          f"attributes); it offers {', '.join(offered) or 'none of this harness runtimes'}")
    if precision not in PRECISIONS[backend]:
        raise FarmRefused(f"{backend} is compiled to {', '.join(PRECISIONS[backend])} here, not {precision} "
                          "(fp16 is AI Hub's --quantize_full_type float16, sent for QNN targets only)")
    return device


@lru_cache(maxsize=64)
def refusal(name: str, backend: str, precision: str) -> str | None:
    """Why the farm cannot run `backend` on device `name` in `precision` (asked of the service once per process),
    or None; None too where the service cannot be asked (the run then says what failed)."""
    import qai_hub

    try:
        resolve(qai_hub.Client(), name, backend, precision)
    except FarmRefused as exc:
        return str(exc)
    except Exception:  # the service unreachable now: the worker reports it with the service's own words
        return None
    return None


def model_digest(artifact: Path) -> str:
    """sha256 of what is uploaded: the model file and any external data beside it."""
    digest = hashlib.sha256()
    for path in [artifact, *sorted(artifact.parent.glob(artifact.name + ".data"))]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


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
    retried: list[str] = field(default_factory=list)  # jobs submitted again after a failure not the model's own
    repeat: int = 0  # which measurement of this model on this device (each its own inference job)


class AIHubBackend(Backend):
    devices = (FAMILY,)
    artifact_name = OnnxRuntimeBackend.artifact_name
    # fp16: the fp32 ONNX compiled with --quantize_full_type float16 (qai-hub-models' option, for QNN: PRECISIONS)
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
            return (f"name the device: --device '{FAMILY}:Samsung Galaxy S24' (one device, as qai-hub-models' "
                    "published figures name it; '... (Family)' lets the farm pick any of the family) "
                    "(`harness devices --aihub` lists the farm)")
        return client_reason() or self._onnx.unavailable_reason("cpu")

    def precision_reason(self, device: str, precision: str) -> str | None:
        """Asked before a sweep starts: what the device and runtime cannot do, with no job submitted."""
        name = device_name(device)
        return refusal(name, self.name, precision) if name and client_reason() is None else None

    def versions(self) -> dict[str, str]:
        return {"qai-hub": module_version("qai-hub") or "?", **self._onnx.versions()}

    def export(self, model, example, out_dir: Path, precision: str = "fp32", calibration=None) -> Path:
        """fp32 and fp16: the fp32 ONNX (AI Hub casts it when it compiles); int8: the calibrated QDQ ONNX. One
        file, weights inline: what is uploaded is this one file (submit_compile_job(model=<the .onnx>))."""
        return self._onnx.export(model, example, out_dir, "fp32" if precision == "fp16" else precision, calibration,
                                 weights_file=False)

    def precision_coverage(self, artifact: Path):
        return self._onnx.precision_coverage(artifact)

    def is_remote(self, device: str) -> bool:
        return True

    def load(self, model, artifact, device, threads, precision="fp32"):
        """The same artifact on this host's CPU (ONNX Runtime): the agreement check on photographs runs here."""
        return self._onnx.load(model, artifact, "cpu", threads, precision)

    def time_remote(self, artifact: Path, device: str, threads: int, policy, example: np.ndarray | None = None,
                    precision: str = "fp32", client=None, repeat: int = 0, retry_failed: bool = False,
                    **options: str) -> RemoteTiming:
        """Compile (once per model, options and device), then one inference job per measurement (`repeat`): the
        device's profile and its output on `example`. Jobs already in the ledger are waited on, not submitted."""
        import qai_hub

        client = client or qai_hub.Client()
        target = resolve(client, device_name(device), self.name, precision)
        ledger = Ledger()
        compile_options = self.compile_options(precision)
        base = f"{model_digest(artifact)}|{self.runtime}|{compile_options}|{target.name}|{target.os}"
        shape = tuple(example.shape) if example is not None else None
        runs = Runs(client, ledger, retry_failed)
        compiled = runs.job("compile", f"compile|{base}", lambda: client.submit_compile_job(
            model=str(artifact), device=target, name=f"fastvit-harness {artifact.parent.name[:12]}",
            input_specs={INPUT_NAME: shape} if shape else None, options=compile_options))
        runs.finished(compiled, "compile", keep=True)  # the compiled model exists once the compile ended
        target_model = compiled.get_target_model()
        inputs = {INPUT_NAME: [np.ascontiguousarray(example)]} if example is not None else None
        measured = f"{base}|{hashlib.sha256(example.tobytes()).hexdigest() if example is not None else '-'}"
        inferred = runs.job("inference", f"inference|{measured}|{PROFILE_OPTIONS}|{repeat}",
                            lambda: client.submit_inference_job(model=target_model, device=target, inputs=inputs,
                                                                options=PROFILE_OPTIONS, profile=True))
        runs.finished(inferred, "inference", keep=False)
        output = None
        data = inferred.download_output_data() if inputs else None
        if data:
            output = np.asarray(next(iter(data.values()))[0], dtype=np.float32)
        jobs = {"compile": compiled, "inference": inferred}
        facts = next((vars(d) for d in farm_devices(client) if d.name == target.name), {"name": target.name})
        result = FarmProfile(target.name, self.runtime, {k: j.job_id for k, j in jobs.items()},
                             {k: j.url for k, j in jobs.items()}, inferred.download_profile(), output, facts,
                             runs.resumed, runs.retried, repeat)
        return RemoteTiming(tool_result=result, device_facts=facts)

    def compile_options(self, precision: str) -> str:
        options = f"--target_runtime {self.runtime}"
        # the inputs and outputs stay float32 (no --quantize_io): the same input as every other target
        return options + (" --quantize_full_type float16" if precision == "fp16" else "")


PROFILE_OPTIONS = f"--max_profiler_iterations {PROFILE_ITERATIONS}"


class Runs:
    """The jobs of one measurement: each found in the ledger (resumed) or submitted under the ledger's lock on its
    key, and waited on with a bound."""

    def __init__(self, client, ledger: Ledger, retry_failed: bool):
        self.client, self.ledger, self.retry_failed = client, ledger, retry_failed
        self.resumed: list[str] = []
        self.retried: list[str] = []  # kinds submitted again after a failure that was not the model's
        self.keys: dict[str, str] = {}

    def job(self, kind: str, key: str, submit):
        self.keys[kind] = key
        with self.ledger.holding(key):
            entry = self.ledger.get(key)
            if entry and entry.failure and not self.retry_failed:
                raise FarmJobFailed(f"{entry.failure} (kept from {entry.submitted_at:%Y-%m-%d}: the model's own "
                                    "failure, reported again without a new job; --retry-failed submits it again)")
            if entry and not entry.failure:
                self.resumed.append(kind)
                return self.client.get_job(entry.job_id)
            if self.ledger.forgotten(key):  # forgotten after a failure, or a kept one --retry-failed submits again
                self.retried.append(kind)
            submitted = submit()
            self.ledger.put(key, submitted.job_id)
            return submitted

    def finished(self, job, kind: str, keep: bool) -> None:
        """Wait for `job` (at most WAIT_S); FarmJobFailed with the service's message when it failed. keep: the
        failure is the model's own (a compile refused), kept in the ledger; else it is forgotten, so the next run
        submits the job again (the service's, the device's or the dataset's failure)."""
        try:
            status = job.wait(timeout=WAIT_S)
        except TimeoutError:
            raise FarmJobPending(f"AI Hub {kind} job {job.job_id} has not finished after {WAIT_S / 3600:g} h "
                                 f"({job.url}); `harness run` again resumes waiting on it and submits nothing twice"
                                 ) from None
        if status.success:
            return
        message = f"AI Hub {kind} job {job.job_id} {status.code.lower()}: {status.message or 'no message'} ({job.url})"
        if keep:
            self.ledger.keep_failure(self.keys[kind], message)
            raise FarmJobFailed(message)
        self.ledger.forget(self.keys[kind])
        raise FarmJobFailed(f"{message}; not the model's own failure: the next run submits this {kind} job again")
