"""torch.compile's session: the model compiled for the run's static input while it loads, and how dynamo captured it
(backends.torch_compile says why)."""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np
import torch

from .torch_session import TorchSession

WARM_CALLS = 3  # calls made while loading: compilation, then CUDA-graph recording (reduce-overhead records on a
# later call than the first), all before timing
MAX_REASONS = 5  # graph-break reasons kept per run


def dynamo_counts() -> dict:
    """Dynamo's process-wide counters that tell how a model was captured: graphs compiled, graph breaks."""
    from torch._dynamo.utils import counters

    breaks = dict(counters["graph_break"])  # reason -> times it broke a graph, since the process started
    return {"graphs": int(counters["stats"]["unique_graphs"]), "graph_breaks": int(sum(breaks.values())),
            "reasons": breaks}


@contextlib.contextmanager
def inductor_cache(directory: Path):
    """Compile into (and from) `directory` only: the in-memory caches are cleared on the way in, so what is not
    in the directory is compiled afresh."""
    from torch._inductor.utils import clear_caches

    saved = {key: os.environ.get(key) for key in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")}
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(directory)
    os.environ["TRITON_CACHE_DIR"] = str(Path(directory) / "triton")
    clear_caches()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class CompiledSession(TorchSession):
    def __init__(self, model: torch.nn.Module, device: torch.device, threads: int, precision: str,
                 example: np.ndarray, mode: str, cache: Path):
        super().__init__(model, device, threads, precision)  # the session's own weights, in the precision asked
        # channels-last: inductor's convolutions (oneDNN on CPU, cuDNN on GPU) run NHWC without layout copies
        self.model = self.model.to(memory_format=torch.channels_last)
        self.mode = mode
        self.cuda_graphs = device.type == "cuda" and mode in ("reduce-overhead", "max-autotune")
        torch._dynamo.reset()  # a fresh capture, as in a new process: nothing compiled earlier is reused
        before = dynamo_counts()
        began = time.perf_counter()
        with inductor_cache(cache):
            self.compiled = torch.compile(self.model, backend="inductor", mode=mode)
            self.prepare(example)
            for _ in range(WARM_CALLS):
                self.infer()
        self.compile_ms = (time.perf_counter() - began) * 1e3
        after = dynamo_counts()
        self.graphs = after["graphs"] - before["graphs"]
        self.graph_breaks = after["graph_breaks"] - before["graph_breaks"]
        # the reasons that broke a graph in this compile (an earlier one in the process may have had them too):
        # dynamo's first line, the rest is a hint and a link
        self.reasons = [r.splitlines()[0] for r, n in after["reasons"].items()
                        if n > before["reasons"].get(r, 0)][:MAX_REASONS]
        self.loaded = after

    def prepare(self, x: np.ndarray) -> None:
        # the layout the model was compiled for: another would fail dynamo's stride guards and recompile
        self.x = torch.from_numpy(x).to(self.device, self.dtype)
        if self.x.dim() == 4:  # an image batch (a GEMM's matrix has no channels)
            self.x = self.x.contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cuda_graphs:  # each call a new step: the previous call's outputs may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        return self.compiled(x)

    def compilation(self) -> dict:
        now = dynamo_counts()
        return {"mode": self.mode, "compile_ms": self.compile_ms, "graphs": self.graphs,
                "graph_breaks": self.graph_breaks, "break_reasons": self.reasons,
                "recompiles": now["graphs"] - self.loaded["graphs"]}

    def facts(self) -> dict:
        return {**super().facts(), "compile_mode": self.mode, "memory_format": "channels_last",
                "cuda_graphs": self.cuda_graphs}

    def profile(self, iterations: int) -> None:
        return None  # the compiled graph has no module boundaries left to attribute time to
