"""PyTorch eager on CPU (and CUDA where present): the reference every other backend is checked against."""
from __future__ import annotations

import numpy as np
import torch

from .base import Backend, Session


class TorchSession(Session):
    def __init__(self, model: torch.nn.Module, device: torch.device, threads: int):
        torch.set_num_threads(threads)
        self.model = model.to(device).eval()
        self.device = device
        self.x = None
        self.y = None

    def prepare(self, x: np.ndarray) -> None:
        self.x = torch.from_numpy(x).to(self.device)

    @torch.inference_mode()
    def run(self) -> None:
        self.y = self.model(self.x)
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def output(self) -> np.ndarray:
        return self.y.float().cpu().numpy()


class TorchBackend(Backend):
    name = "torch"
    devices = ("cpu", "gpu")
    artifact_name = None

    def unavailable_reason(self, device: str) -> str | None:
        if device == "gpu" and not torch.cuda.is_available():
            return "no CUDA device visible to torch"
        return None

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

    def load(self, model, artifact, device, threads, precision="fp32") -> Session:
        return TorchSession(model, torch.device("cuda" if device == "gpu" else "cpu"), threads)
