"""Qualcomm AI Hub, recorded: the `qai-hub` client with its REST layer (`qai_hub.client.api`, the functions that
send and receive the service's protobuf messages) replaced by answers built from the client's own message
schemas (`qai_hub.public_api_pb2`), the way the client's own tests replace it (qai_hub/test/test_client.py).
Everything above that layer is the real client: uploads, job objects, waiting, profile parsing, datasets.

The profile follows the one the client's own test decodes (ProfileDetail 1.8: microsecond times, every
inference time, per-layer compute unit and time; its numbers); the devices carry the attributes qai_hub.Device
documents. The "device" runs the uploaded ONNX with ONNX Runtime on the uploaded input, so the inference job's
output is a real output of our artifact. See tests/fixtures/SOURCES.md.
"""
from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp
from qai_hub import public_api_pb2 as pb
from qai_hub.client import Client, ClientConfig, Job
from qai_hub.util.dataset_entries_converters import dataset_entries_to_h5, h5_to_dataset_entries

DEVICES = [  # name, os, attributes (qai_hub.Device's documented attribute vocabulary)
    # a phone and its family, as the farm lists both (qai-hub-models' devices_and_chipsets_yaml.py skips the
    # "(Family)" entries and keys its published figures by the phone's own name)
    ("Samsung Galaxy S24", "14", ["chipset:qualcomm-snapdragon-8gen3", "format:phone", "framework:onnx",
                                  "framework:qnn", "framework:tflite", "os:android", "vendor:samsung"]),
    ("Samsung Galaxy S24 (Family)", "14", ["chipset:qualcomm-snapdragon-8gen3", "format:phone", "framework:onnx",
                                           "framework:qnn", "framework:tflite", "os:android", "vendor:samsung"]),
    ("Samsung Galaxy S23 (Family)", "13", ["chipset:qualcomm-snapdragon-8gen2", "format:phone", "framework:onnx",
                                           "framework:qnn", "framework:tflite", "os:android", "vendor:samsung"]),
    ("Google Pixel 7", "13", ["chipset:google-tensor-g2", "format:phone", "framework:tflite", "os:android",
                              "vendor:google"]),
]
TARGET_TYPES = {"tflite": pb.MODEL_TYPE_TFLITE, "onnx": pb.MODEL_TYPE_ONNX,
                "qnn_context_binary": pb.MODEL_TYPE_QNN_CONTEXT_BINARY}
RUNNING = {"compile": pb.JOB_STATE_OPTIMIZING_MODEL, "profile": pb.JOB_STATE_MEASURING_PERFORMANCE,
           "inference": pb.JOB_STATE_RUNNING_INFERENCE}
# the compute unit of each layer the "device" reports: convolutions and GEMMs on the NPU, the rest spread
UNIT_OF = {"Conv": pb.COMPUTE_UNIT_NPU, "Gemm": pb.COMPUTE_UNIT_NPU, "MatMul": pb.COMPUTE_UNIT_NPU,
           "Softmax": pb.COMPUTE_UNIT_GPU, "Erf": pb.COMPUTE_UNIT_CPU}


def config(tmp_path: Path) -> ClientConfig:
    """What `qai-hub configure` writes, pointing at a closed local port: any call the recording does not
    answer fails at once instead of reaching the network."""
    return ClientConfig(api_url="http://127.0.0.1:9", web_url="https://app.aihub.qualcomm.com",
                        api_token="recorded-token", verbose=False)


def write_token(home: Path) -> Path:
    """~/.qai_hub/client.ini as `qai-hub configure --api_token` writes it."""
    path = home / ".qai_hub" / "client.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[api]\napi_token = recorded-token\napi_url = http://127.0.0.1:9\n"
                    "web_url = https://app.aihub.qualcomm.com\nverbose = False\n")
    return path


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


@dataclass
class _Job:
    kind: str
    pb: object  # the job's own message (CompileJob, ProfileJob, InferenceJob)
    polls: int  # get_job answers left before it finishes
    fail: str | None = None  # failure_reason when it ends FAILED
    output_dataset: str | None = None


@dataclass
class RecordedFarm:
    """The service's side. compile_failure: the message a compile job fails with; polls: how often a job is
    seen running before it ends; hold: job kinds that never end (a job still running when a sweep stops)."""
    compile_failure: str | None = None
    inference_failures: list = field(default_factory=list)  # failure reasons of the next inference jobs, in turn
    polls: int = 1
    hold: set = field(default_factory=set)
    created: Counter = field(default_factory=Counter)  # jobs submitted, by kind (what the user pays for)
    submitted_at: list = field(default_factory=list)  # (kind, time.monotonic()) of every submission
    compile_options: list = field(default_factory=list)  # the options of every compile job, as sent
    jobs: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)  # model id -> uploaded file bytes (ONNX) or the compiled type
    datasets: dict = field(default_factory=dict)  # dataset id -> DatasetEntries
    _ids: itertools.count = field(default_factory=itertools.count)

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):07d}"

    # --- the REST functions the client calls (qai_hub.public_rest_api), same names and arguments ---------

    def get_device_list(self, config, name="", os="", attributes=None, select=False):
        found = pb.DeviceList()
        for device_name, device_os, device_attributes in DEVICES:
            if (not name or name == device_name) and all(a in device_attributes for a in attributes or []):
                found.devices.append(pb.Device(name=device_name, os=device_os, attributes=device_attributes))
        found.total_query_count = len(found.devices)
        return found

    def create_and_upload_model(self, config, path, model_type, name=None, project_id=None, verbose=None,
                                is_directory=False, **_):
        model_id = self._id("m")
        self.models[model_id] = Path(path).read_bytes()
        return pb.CreateUpdateResponse(id=model_id, creation_time=_now())

    def create_and_upload_dataset(self, config, path, name, permanent=False, project_id=None, verbose=None, **_):
        dataset_id = self._id("d")
        with h5py.File(path, "r") as h5f:
            self.datasets[dataset_id] = h5_to_dataset_entries(h5f)
        return pb.CreateUpdateResponse(id=dataset_id, creation_time=_now())

    def _create(self, kind: str, message, field_name: str) -> pb.CreateUpdateResponse:
        job_id = self._id("j")
        setattr(message, field_name, job_id)
        message.creation_time.CopyFrom(_now())
        if kind == "compile":
            message.device.CopyFrom(message.devices.devices[0])
            runtime = message.options.split("--target_runtime", 1)[1].split()[0]
            self.compile_options.append(message.options)
            target_id = self._id("m")
            self.models[target_id] = (runtime, message.model.model_id)
            message.target_model.CopyFrom(pb.Model(model_id=target_id, name="compiled", model_type=TARGET_TYPES[
                runtime], producer_id=job_id, creation_time=_now()))
        fail = self.compile_failure if kind in ("compile", "profile", "inference") and self.compile_failure else None
        if kind == "inference" and not fail and self.inference_failures:
            fail = self.inference_failures.pop(0)
        self.jobs[job_id] = _Job(kind, message, self.polls, fail=fail)
        self.created[kind] += 1
        self.submitted_at.append((kind, time.monotonic()))
        return pb.CreateUpdateResponse(id=job_id, creation_time=_now())

    def create_compile_job(self, config, compile_job_pb, project_id=None):
        return self._create("compile", compile_job_pb, "compile_job_id")

    def create_inference_job(self, config, inference_job_pb, project_id=None):
        # the client sends a profile job as an inference job with profiling on and no inputs of ours
        kind = "inference" if inference_job_pb.dataset.dataset_id else "profile"
        return self._create(kind, inference_job_pb, "inference_job_id")

    def get_job(self, config, job_id):
        job = self.jobs[job_id]
        if job.polls > 0 or job.kind in self.hold:
            job.polls -= 1
            job.pb.job_state = RUNNING[job.kind]
        elif job.fail:
            job.pb.job_state = pb.JOB_STATE_FAILED
            job.pb.failure_reason = job.fail if job.kind == "compile" or not self.compile_failure else (
                "the model this job needs failed to compile")
        else:
            job.pb.job_state = pb.JOB_STATE_DONE
        return pb.Job(**{"compile_job" if job.kind == "compile" else "inference_job": job.pb})

    def get_model(self, config, model_id):
        return pb.Model(model_id=model_id, name="compiled")

    def get_job_results(self, config, job_id):
        job = self.jobs[job_id]
        if job.kind == "compile":
            return pb.JobResult(compile_job_result=pb.CompileJobResult(compile_job_id=job_id))
        result = pb.InferenceJobResult(inference_job_id=job_id)
        if job.pb.is_profiling_on:
            result.detail.CopyFrom(self._profile(job.pb))
        if job.pb.dataset.dataset_id:
            if job.output_dataset is None:
                job.output_dataset = self._infer(job.pb)
            result.output_dataset_id = job.output_dataset
        return pb.JobResult(inference_job_result=result)

    def get_dataset(self, config, dataset_id):
        return pb.Dataset(dataset_id=dataset_id, name="outputs", creation_time=_now(), file_upload_complete=True)

    def download_dataset(self, config, dataset_id, file_path, verbose=None, **_):
        with h5py.File(file_path, "w") as h5f:
            dataset_entries_to_h5(self.datasets[dataset_id], h5f)
        return file_path

    # --- what the "device" measures ---------------------------------------------------------------------

    def _source_onnx(self, target_model_id: str) -> bytes:
        _runtime, source = self.models[target_model_id]
        return self.models[source]

    def _layers(self, target_model_id: str) -> list[tuple[str, str]]:
        import onnx

        graph = onnx.load_from_string(self._source_onnx(target_model_id)).graph
        return [(node.name or node.op_type, node.op_type) for node in graph.node]

    def _profile(self, job_pb) -> pb.ProfileDetail:
        profile = pb.ProfileDetail(major_version=1, minor_version=8)
        times = [4205 + 37 * (i % 9) for i in range(100)]  # microseconds, around the client test's 4205
        profile.execution_time = 4205  # the service's estimate: the client test's figure, not these times' median
        profile.cold_load_time, profile.warm_load_time = 1374293, 277823
        profile.after_execution_peak_memory = 166711296  # deprecated: the ranges below are what readers use
        profile.execution_memory.increase.lower, profile.execution_memory.increase.upper = 8388608, 12582912
        profile.execution_memory.peak.lower, profile.execution_memory.peak.upper = 25165824, 33554432
        profile.all_execution_times.extend(times)
        profile.all_cold_load_times.append(1374293)
        profile.all_warm_load_times.append(277823)
        for name, op_type in self._layers(job_pb.model.model_id):
            unit = UNIT_OF.get(op_type, pb.COMPUTE_UNIT_NPU if op_type in ("Add", "Mul") else pb.COMPUTE_UNIT_CPU)
            profile.layer_details.append(pb.LayerDetail(name=name, layer_type_name=op_type, compute_unit=unit,
                                                        execution_time=40 if unit == pb.COMPUTE_UNIT_NPU else 9))
        return profile

    def _infer(self, job_pb) -> str:
        import onnxruntime as ort

        session = ort.InferenceSession(self._source_onnx(job_pb.model.model_id), providers=["CPUExecutionProvider"])
        inputs = self.datasets[job_pb.dataset.dataset_id]
        name = session.get_inputs()[0].name
        output = session.run(None, {name: inputs[next(iter(inputs))][0]})[0]
        # a float model on the NPU computes in fp16
        dataset_id = self._id("d")
        self.datasets[dataset_id] = {"output_0": [output.astype(np.float16).astype(np.float32)]}
        return dataset_id


def install(monkeypatch, farm: RecordedFarm) -> None:
    """Answer every REST call of the qai-hub client from `farm`; jobs are polled every second."""
    import qai_hub.client as client_module

    for name in ("get_device_list", "create_and_upload_model", "create_and_upload_dataset", "create_compile_job",
                 "create_inference_job", "get_job", "get_model", "get_job_results", "get_dataset",
                 "download_dataset"):
        monkeypatch.setattr(client_module.api, name, getattr(farm, name))
    monkeypatch.setattr(Job, "_polling_interval", 1)


def client(tmp_path: Path) -> Client:
    return Client(config=config(tmp_path))
