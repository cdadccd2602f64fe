"""Will a model spec fit in this machine's memory? Estimated from one forward pass on torch's meta
device (shapes only, no memory, about a second), before any work starts.

The pass runs in a short-lived process of its own and its answer is kept in the cache per model, resolution and
batch: the sweep's parent names, plans and stores, and never loads torch (600 MB it would hold while every run is
timed).

    python -m harness.measure.memory < SPECS.json     (a list of ModelSpec dicts; prints [bytes, where] or an error
                                                       per spec)
"""
from __future__ import annotations

import importlib.metadata
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

from ..spec import ModelSpec, fastvit_source_hash
from .cache import cache_key, write_whole

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
    import torch

    from backends.torch_session import ATTENTION, module_kind

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


SIZING_TIMEOUT_S = 600  # a meta pass per spec, about a second each, after torch's import


def sizing_key(spec: ModelSpec) -> str:
    """Everything that decides a spec's largest tensor: the architecture (the model code, or timm's version), the
    input's size, this module."""
    parts = {"model": spec.model, "resolution": spec.resolution, "batch": spec.batch,
             "sizing": inspect.getsource(largest_tensor)}
    if spec.is_baseline:
        try:
            parts["timm"] = importlib.metadata.version("timm")
        except importlib.metadata.PackageNotFoundError:
            parts["timm"] = None  # the pass says what is missing, and nothing is kept
    else:
        parts["fastvit"] = fastvit_source_hash()
    return cache_key(parts)


def largest_tensors(specs: list[ModelSpec], cache_dir: Path) -> list[tuple[int, str]]:
    """largest_tensor of each spec: from the cache, else measured (all missing at once) in a process of its own and
    kept. ValueError for a spec that cannot be built (an unknown timm model, timm missing)."""
    folder = Path(cache_dir) / "largest-tensor"
    paths = [folder / f"{sizing_key(spec)}.json" for spec in specs]
    missing = [i for i, path in enumerate(paths) if not path.exists()]
    if missing:
        answers = size_elsewhere([specs[i] for i in missing])
        for i, answer in zip(missing, answers):
            if "error" in answer:
                raise ValueError(answer["error"])
            write_whole(paths[i], lambda temporary: temporary.write_text(json.dumps(answer["largest"])))
    return [tuple(json.loads(path.read_text())) for path in paths]


def size_elsewhere(specs: list[ModelSpec]) -> list[dict]:
    """Each spec's {"largest": [bytes, where]} or {"error": why}, from `python -m harness.measure.memory`."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}  # a meta pass computes nothing: no thread pool needed
    try:
        done = subprocess.run([sys.executable, "-m", "harness.measure.memory"], input=json.dumps(
            [spec.as_dict() for spec in specs]), capture_output=True, text=True, timeout=SIZING_TIMEOUT_S,
            env=environment, cwd=Path(__file__).resolve().parents[2])
    except subprocess.TimeoutExpired:
        raise ValueError(f"sizing the models' largest tensors took over {SIZING_TIMEOUT_S} s") from None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ValueError(f"sizing the models' largest tensors failed (exit {done.returncode}): {tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # the answer is the last line, whatever printed before


def check_fits(specs: list[ModelSpec], cache_dir: Path) -> None:
    """ValueError, naming the memory needed, for the first spec whose input and largest activation (with the
    layer input it is computed from) cannot fit in this machine's available memory; or that cannot be built."""
    available = available_memory_bytes()
    for spec, (largest, where) in zip(specs, largest_tensors(specs, cache_dir)):
        needed = spec.batch * 3 * spec.resolution ** 2 * FLOAT_BYTES + 2 * largest
        if available is not None and needed > available:
            raise ValueError(f"{spec.model} at {spec.resolution}x{spec.resolution}, batch {spec.batch}, needs at "
                             f"least {gib(needed)} ({gib(largest)} for its largest tensor, in {where}) and this machine "
                             f"has {gib(available)} available; use a smaller --resolution or --batch")


def gib(n: int) -> str:
    return f"{n / 2 ** 30:,.1f} GiB"


def main() -> int:
    answers = []
    for found in json.loads(sys.stdin.read()):
        try:
            answers.append({"largest": list(largest_tensor(ModelSpec(**found)))})
        except ValueError as exc:  # a model that cannot be built: said by the parent, in one sentence
            answers.append({"error": str(exc)})
    print(json.dumps(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
