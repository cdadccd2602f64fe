"""PyTorch eager on CPU (and CUDA where present): the reference every other backend is checked against.

The backend is declared without torch (the sweep's parent names it, plans and stores); torch loads where a target is
asked about a GPU, a version, or a session (backends.torch_session)."""
from __future__ import annotations

from .base import Backend, Session, cpu_flags, cpu_has_bf16, gpu_driver_present, torch_version


class TorchBackend(Backend):
    name = "torch"
    devices = ("cpu", "gpu")
    artifact_name = None
    precisions = ("fp32", "fp16", "bf16")

    def precision_reason(self, device: str, precision: str) -> str | None:
        if precision == "fp32":
            return None
        if device == "gpu":
            import torch

            if precision == "bf16" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
                return f"{torch.cuda.get_device_name(0)} does not compute bf16"
            return None
        if precision == "bf16" and not cpu_has_bf16():
            return "this CPU has no bf16 instructions (AVX512-BF16 or AMX); torch would emulate bf16 in fp32"
        if precision == "fp16" and not {"avx512_fp16", "amx_fp16"} & cpu_flags():
            return "this CPU has no fp16 arithmetic (AVX512-FP16 or AMX-FP16); torch would emulate fp16 in fp32"
        return None

    def unavailable_reason(self, device: str) -> str | None:
        if device != "gpu":
            return None
        if gpu_driver_present():  # no driver: no GPU, known without loading torch
            import torch

            if torch.cuda.is_available():
                return None
        return "no CUDA device visible to torch"

    def versions(self) -> dict[str, str]:
        found = {"torch": torch_version()}
        if gpu_driver_present():  # the GPU's name and CUDA: torch must load to say them
            import torch

            if torch.cuda.is_available():
                found.update(cuda=torch.version.cuda, gpu=torch.cuda.get_device_name(0))
        return found

    def load(self, model, artifact, device, threads, precision="fp32") -> Session:
        import torch

        from .torch_session import TorchSession

        return TorchSession(model, torch.device("cuda" if device == "gpu" else "cpu"), threads, precision)

