"""PyTorch eager's session: the model's own modules run (and profiled, module by module) in this process."""
from __future__ import annotations

import copy

import numpy as np
import torch

from .base import Session

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


ATTENTION = "Attention (SDPA and reshapes)"  # op type of an attention module's own time


class TorchSession(Session):
    def __init__(self, model: torch.nn.Module, device: torch.device, threads: int, precision: str = "fp32"):
        torch.set_num_threads(threads)
        if device.type == "cuda":
            # fp32 means fp32: torch lets cuDNN convolutions run in TF32 by default (TensorRT's
            # fp32 target turns TF32 off too)
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.cuda.reset_peak_memory_stats(device)
        # the session's own copy of the weights, made here: loading a torch model is materializing them (and
        # the caller's module is not moved to the GPU under it)
        self.dtype = DTYPES[precision]  # fp16/bf16: weights and activations in that type, as .half() apps do
        self.model = copy.deepcopy(model).to(device=device, dtype=self.dtype).eval()
        self.device = device
        self.x = None
        self.y = None

    def prepare(self, x: np.ndarray) -> None:
        self.x = torch.from_numpy(x).to(self.device, self.dtype)

    @torch.inference_mode()
    def infer(self) -> None:
        self.y = self.forward(self.x)
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def output(self) -> np.ndarray:
        return self.y.float().cpu().numpy()

    def facts(self) -> dict:
        return {"runtime_precision": str(next(self.model.parameters()).dtype).removeprefix("torch.")}

    def device_memory_mb(self) -> float | None:
        if self.device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated(self.device) / 2**20  # weights, activations, since this session

    @torch.inference_mode()
    def profile(self, iterations: int) -> list[dict]:
        """Self time of every module (its time minus its children's), via forward hooks.

        Hooks add a few microseconds per module call; shares are meaningful, absolute times are high.
        """
        import time

        rows: dict[str, dict] = {}
        stack: list[list] = []  # [start_ns, child_ns] per open module call

        def before(module, _inputs):
            stack.append([time.perf_counter_ns(), 0])

        def after(module, _inputs, _output):
            start, children = stack.pop()
            elapsed = time.perf_counter_ns() - start
            if stack:
                stack[-1][1] += elapsed
            row = rows[names[module]]
            row["total_ns"] += elapsed - children
            row["calls_total"] += 1

        names = {m: n or type(m).__name__ for n, m in self.model.named_modules()}
        for module, name in names.items():
            rows[name] = {"op_name": name, "total_ns": 0, "calls_total": 0, **module_kind(module)}
        handles = [h for m in names for h in (m.register_forward_pre_hook(before), m.register_forward_hook(after))]
        try:
            for _ in range(iterations):
                self.model(self.x)
        finally:
            for handle in handles:
                handle.remove()
        return [{"op_name": r["op_name"], "op_type": r["op_type"], "kernel": r["kernel"], "depthwise": r["depthwise"],
                 "calls": r["calls_total"] // iterations, "total_ms": r["total_ns"] / 1e6 / iterations}
                for r in rows.values() if r["calls_total"]]


def module_kind(module: torch.nn.Module) -> dict:
    """{op_type, kernel, depthwise} a module's self time is labelled with (containers: their residual
    adds and glue); harness.opclass maps it onto the op-class vocabulary."""
    kind = type(module).__name__
    if isinstance(module, torch.nn.Conv2d):
        depthwise = module.groups > 1 and module.groups == module.in_channels
        return {"op_type": "Conv2d", "kernel": module.kernel_size[0], "depthwise": depthwise}
    if isinstance(module, torch.nn.Linear):
        return {"op_type": "Linear", "kernel": None, "depthwise": False}
    if kind.endswith("Attention") and "Block" not in kind:  # the attention itself, not a block holding one
        kind = ATTENTION
    elif not any(word in kind for word in ("Linear", "Norm", "GELU", "ReLU", "Sigmoid", "SiLU", "Dropout", "Pool")):
        kind = f"{kind} (glue: adds, scales, reshapes)"
    return {"op_type": kind, "kernel": None, "depthwise": False}
