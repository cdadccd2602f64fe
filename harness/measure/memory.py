"""Will a model spec fit in this machine's memory? Estimated from one forward pass on torch's meta
device (shapes only, no memory, about a second), before any work starts."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from backends.torch_eager import ATTENTION, module_kind

from ..spec import ModelSpec

FLOAT_BYTES = 4


def available_memory_bytes() -> int | None:
    """Memory available to a new process now (Linux MemAvailable), else the machine's total."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def largest_tensor(spec: ModelSpec) -> tuple[int, str]:
    """(bytes, where) of the largest tensor one forward pass holds: a layer's output, or an attention
    matrix (heads x tokens x tokens, which every exported graph materializes)."""
    found = [(0, "")]

    def record(module, inputs, output):
        name = names[module]
        if isinstance(output, torch.Tensor):
            found.append((output.numel() * FLOAT_BYTES, name or "the output"))
        heads = getattr(module, "num_heads", None)
        if heads and module_kind(module)["op_type"] == ATTENTION and inputs and inputs[0].dim() in (3, 4):
            x = inputs[0]
            tokens = x.shape[2] * x.shape[3] if x.dim() == 4 else x.shape[1]
            found.append((x.shape[0] * heads * tokens * tokens * FLOAT_BYTES, f"{name} (attention matrix)"))

    with torch.device("meta"):
        model = spec.architecture().eval()
        names = {m: n for n, m in model.named_modules()}
        for module in names:
            module.register_forward_hook(record)
        with torch.no_grad():
            model(torch.empty(spec.batch, 3, spec.resolution, spec.resolution))
    return max(found)


def check_fits(spec: ModelSpec) -> None:
    """ValueError, naming the memory needed, when the input and the largest activation (with the
    layer input it is computed from) cannot fit in this machine's available memory."""
    available = available_memory_bytes()
    if available is None:
        return
    largest, where = largest_tensor(spec)
    needed = spec.batch * 3 * spec.resolution ** 2 * FLOAT_BYTES + 2 * largest
    if needed > available:
        raise ValueError(f"{spec.model} at {spec.resolution}x{spec.resolution}, batch {spec.batch}, needs at least "
                         f"{gib(needed)} ({gib(largest)} for its largest tensor, in {where}) and this machine has "
                         f"{gib(available)} available; use a smaller --resolution or --batch")


def gib(n: int) -> str:
    return f"{n / 2 ** 30:,.1f} GiB"
