"""timm's benchmark tables (huggingface/pytorch-image-models, `results/benchmark-infer-*.csv`) as published runs.

timm's `benchmark.py` times each model's inference on one device per file and writes a row per (model, image size):
`infer_samples_per_sec` (samples over the wall time of `--num-bench-iter` steps), `infer_step_time` (the mean ms per
step), `infer_batch_size`, `param_count` (millions, of the model as timed: fused only with `--reparam`), and the
fvcore/deepspeed counts `infer_gmacs` and `infer_macts`. The file's name says how it was run:
`benchmark-infer-{amp|amp_bf16|bf16|fp32}-{nchw|nhwc}-pt{torch}-{cu{cuda}|cpu}-{device}[-dynamo].csv`.

Each row becomes a run marked published: on a host named after the device, target `torch/gpu` (or `torch-compile/
gpu` for `-dynamo`, or `/cpu`) whose options name the layout and the PyTorch and CUDA versions, the file's precision,
the row's batch and image size, and as its latency the mean time per image its throughput implies (1000 /
samples_per_sec ms; a mean, not a median). Which form was timed is established per row, never assumed: its
param_count against this harness's count of the model's training and fused forms (form_evidence). A row whose form
cannot be established is not stored, and said so in one line.

Offline, the rows of the models the claims use come bundled from one pinned commit (harness/data/
timm-benchmark.json, made by `python -m harness.ingest.published_timm RESULTS_DIR COMMIT`).
"""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from .. import baselines
from ..spec import ModelSpec, Target, canonical_model
from ..store.schema import PUBLISHED_HOST_PREFIX
from ..store.writes import PublishedFigure, save_published

REPOSITORY = "huggingface/pytorch-image-models"
NAMESPACE = uuid.UUID("0b3c7f52-9a8e-4f1c-8d2b-5e6a7c9d1f30")  # of timm rows' run UUIDs
FILE_NAME = re.compile(r"^benchmark-infer-(?P<precision>amp|amp_bf16|bf16|fp16|fp32)-(?P<layout>nchw|nhwc)-"
                       r"pt(?P<torch>\d+)-(?P<accel>cu\d+|cpu)-(?P<device>[a-z0-9_]+?)(?P<dynamo>-dynamo)?\.csv$")
COLUMNS = ("model", "infer_img_size", "infer_samples_per_sec", "infer_step_time", "infer_batch_size", "param_count",
           "infer_gmacs", "infer_macts")
# the device tokens of timm's file names, as their makers name them
DEVICES = {"rtx3090": "RTX 3090", "rtx4090": "RTX 4090", "4090": "RTX 4090", "5090": "RTX 5090",
           "pro6000maxq": "RTX Pro 6000 Max-Q", "i9_10940x": "Core i9-10940X", "i7_12700h": "Core i7-12700H"}
CHIPS = {"RTX 3090": "NVIDIA GeForce RTX 3090", "RTX 4090": "NVIDIA GeForce RTX 4090",
         "RTX 5090": "NVIDIA GeForce RTX 5090", "RTX Pro 6000 Max-Q": "NVIDIA RTX PRO 6000 Blackwell Max-Q",
         "Core i9-10940X": "Intel Core i9-10940X", "Core i7-12700H": "Intel Core i7-12700H"}
PRECISION_NAMES = {"amp": "AMP (fp16)", "amp_bf16": "AMP (bf16)", "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}


@dataclass(frozen=True)
class BenchmarkFile:
    """What a file's name says about how its rows were timed."""
    name: str
    precision: str  # amp (fp16 autocast), amp_bf16, bf16, fp16 or fp32
    layout: str  # nchw or nhwc (channels_last)
    torch: str  # "2.4.0"
    cuda: str | None  # "12.4"; None on a CPU
    device: str  # "RTX 4090"
    compiled: bool  # torch.compile (`-dynamo`)

    @property
    def target(self) -> Target:
        options = f"layout={self.layout},torch={self.torch}" + (f",cuda={self.cuda}" if self.cuda else "")
        return Target("torch-compile" if self.compiled else "torch", "gpu" if self.cuda else "cpu", options)

    @property
    def protocol(self) -> str:
        """'RTX 4090, AMP (fp16), NCHW, torch.compile, PyTorch 2.4.0': how a reader names this file's conditions."""
        return ", ".join([self.device, PRECISION_NAMES[self.precision], self.layout.upper(),
                          "torch.compile" if self.compiled else "eager", f"PyTorch {self.torch}"]
                         + ([f"CUDA {self.cuda}"] if self.cuda else []))


def _torch_version(digits: str) -> str:
    """'113' -> '1.13', '240' -> '2.4.0', '291' -> '2.9.1' (timm's file names drop the dots)."""
    return f"1.{digits[1:]}" if digits.startswith("1") else ".".join(digits)


def parse_name(name: str) -> BenchmarkFile:
    """ValueError for a file that is not one of timm's inference benchmark tables."""
    found = FILE_NAME.match(name)
    if not found:
        raise ValueError(f"{name} is not a timm inference benchmark table (benchmark-infer-<precision>-<layout>-"
                         "pt<torch>-<cuda|cpu>-<device>[-dynamo].csv)")
    accel, token = found["accel"], found["device"]
    cuda = f"{accel[2:-1]}.{accel[-1]}" if accel != "cpu" else None
    return BenchmarkFile(name, found["precision"], found["layout"], _torch_version(found["torch"]), cuda,
                         DEVICES.get(token, token.replace("_", "-").upper()), bool(found["dynamo"]))


@dataclass(frozen=True)
class Row:
    model: str  # timm's name
    img_size: int
    samples_per_sec: float
    step_time_ms: float
    batch: int
    param_count_m: float | None
    gmacs: float | None
    macts_m: float | None

    @property
    def ms_per_image(self) -> float:
        return 1000.0 / self.samples_per_sec


def _number(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def _whole(text: str) -> int:
    """A whole number, as timm writes it ('1024' or, where pandas wrote the file, '1024.0')."""
    value = float(text)
    if not value.is_integer():
        raise ValueError(f"{text!r} is not a whole number")
    return int(value)


def read_rows(name: str, text: str) -> list[Row]:
    """The rows of one file; ValueError naming the file where its columns are not timm's."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS[:5] if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{name}: not a timm inference benchmark table (no column {', '.join(missing)})")
    try:
        return [Row(r["model"], _whole(r["infer_img_size"]), float(r["infer_samples_per_sec"]),
                    float(r["infer_step_time"]), _whole(r["infer_batch_size"]), _number(r.get("param_count")),
                    _number(r.get("infer_gmacs")), _number(r.get("infer_macts"))) for r in reader]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: a row that is not numbers where timm writes them ({exc})") from exc


# --- which form a row timed --------------------------------------------------------------------------------------

@cache
def param_counts(model: str) -> tuple[float, float] | None:
    """(training form, fused form) parameters of a canonical model, in millions to timm's two decimals; None where
    they cannot be counted here (a baseline without timm installed)."""
    import fastvit

    if not model.startswith(baselines.PREFIX):
        counted = fastvit.count(model, 256)
        return round(counted.params_train / 1e6, 2), round(counted.params_inference / 1e6, 2)
    try:
        from timm.utils.model import reparameterize_model

        net = baselines.architecture(model).eval()
    except (ValueError, ImportError):
        return None
    train = sum(p.numel() for p in net.parameters())
    fused = sum(p.numel() for p in reparameterize_model(net).parameters())
    return round(train / 1e6, 2), round(fused / 1e6, 2)


def _counts(model: str, known: dict | None) -> tuple[float, float] | None:
    return tuple(known[model]) if known and model in known else param_counts(model)


def forms_alike(model: str, known: dict | None = None) -> bool:
    """Both forms of the model have the same parameters: nothing to fuse, so one row times both."""
    counts = _counts(model, known)
    return bool(counts) and counts[0] == counts[1]


def form_evidence(model: str, param_count_m: float | None, known: dict | None = None) -> tuple[str | None, str]:
    """(form, why) of a row: 'train' where its param_count is the training form's alone, 'reparam' where it is the
    fused form's (or both forms have the same parameters: nothing to fuse), None where it cannot be told, and the
    counts that decided. known: counts made elsewhere (the bundle's), used where this machine cannot count."""
    counts = _counts(model, known)
    if param_count_m is None:
        return None, "the row gives no param_count"
    if counts is None:
        return None, f"param_count {param_count_m:g}M: the model's forms cannot be counted here (timm not installed)"
    train, fused = counts
    if train == fused == param_count_m:
        return "reparam", f"param_count {param_count_m:g}M: nothing to fuse (both forms {train:g}M)"
    if param_count_m == train:
        return "train", f"param_count {param_count_m:g}M: the training form's ({train:g}M; fused {fused:g}M)"
    if param_count_m == fused:
        return "reparam", f"param_count {param_count_m:g}M: the fused form's ({fused:g}M; training {train:g}M)"
    return None, f"param_count {param_count_m:g}M is neither form's (training {train:g}M, fused {fused:g}M)"


# --- reading files: a checkout, or the bundle ----------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """timm's benchmark files as read: name -> text, the commit they were read at, and parameter counts made where
    they were bundled (for baselines a machine without timm cannot count)."""
    files: dict[str, str]
    commit: str
    counts: dict[str, list[float]]  # canonical model -> (training form, fused form) params, millions

    def url(self, name: str) -> str:
        return f"https://github.com/{REPOSITORY}/blob/{self.commit}/results/{name}"


def bundled() -> Source:
    data = json.loads((resources.files("harness") / "data" / "timm-benchmark.json").read_text())
    return Source(data["files"], data["commit"], data.get("param_counts", {}))


def _bundled_counts() -> dict[str, list[float]]:
    """The baselines' counts the bundle was made with: a machine without timm reads the form from these."""
    try:
        return bundled().counts
    except (OSError, ValueError):
        return {}


def _git(folder: Path, *args: str) -> str | None:
    try:
        found = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() if found.returncode == 0 else None


def _commit_of(folder: Path) -> str:
    """The commit a timm checkout is at; 'unknown' for files outside one (copied, or inside another repository)."""
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top is None or not (Path(top) / "timm" / "__init__.py").is_file():
        return "unknown"
    return _git(folder, "rev-parse", "HEAD") or "unknown"


def from_folder(folder: Path, commit: str | None = None) -> Source:
    """Every benchmark-infer-*.csv of a timm checkout's results/ folder (or of `folder` itself); ValueError where
    there are none. The commit: as given, else the checkout's HEAD, else 'unknown'."""
    folder = Path(folder)
    results = folder / "results" if (folder / "results").is_dir() else folder
    files = {p.name: p.read_text() for p in sorted(results.glob("benchmark-infer-*.csv"))}
    if not files:
        raise ValueError(f"{folder} holds no timm benchmark tables (results/benchmark-infer-*.csv of a checkout of "
                         f"{REPOSITORY})")
    return Source(files, commit or _commit_of(results), {})


# --- rows -> published runs ----------------------------------------------------------------------------------------

def claim_models() -> dict[str, str]:
    """timm name -> canonical name of every model the claims (and the baselines) use."""
    import fastvit

    found = {f"fastvit_{v}": v for v in fastvit.list_models()}
    found.update({b.timm_name: baselines.PREFIX + b.timm_name for b in baselines.BASELINES.values()})
    return found


@dataclass(frozen=True)
class Skipped:
    file: str
    model: str
    why: str


def figures(source: Source, models: dict[str, str] | None = None) -> tuple[list[PublishedFigure], list[Skipped]]:
    """The published runs of every row of `models` (timm name -> canonical; default: the claims' models) in the
    source's files, and the rows not stored with why (a form that cannot be established, a size no spec has)."""
    models = models or claim_models()
    known = {**_bundled_counts(), **source.counts}
    found, skipped = [], []
    for name, text in sorted(source.files.items()):
        about = parse_name(name)
        host = {"hostname": PUBLISHED_HOST_PREFIX + about.device, "cpu_model": CHIPS.get(about.device, about.device),
                "logical_cores": None, "os": "n/a", "machine": "unknown"}
        for row in read_rows(name, text):
            if row.model not in models:
                continue
            model = models[row.model]
            form, why = form_evidence(model, row.param_count_m, known)
            if form is None:
                skipped.append(Skipped(name, row.model, f"form unknown: {why}"))
                continue
            try:
                spec = ModelSpec(model, row.img_size, row.batch, form, weights="published")
            except ValueError as exc:  # a size no model spec of the harness has (ResNet-50 at 176 px)
                skipped.append(Skipped(name, row.model, str(exc)))
                continue
            citation = (f"timm ({REPOSITORY}) results/{name} at commit {source.commit[:12]}: benchmark.py inference, "
                        f"{about.protocol}, batch {row.batch}; {row.samples_per_sec:g} samples/s "
                        f"(1000 / samples_per_sec = ms per image)")
            environment = {"source": "timm benchmark.py", "file": name, "commit": source.commit,
                           "layout": about.layout, "compiled": about.compiled, "versions": {
                               "torch": about.torch, **({"cuda": about.cuda} if about.cuda else {})},
                           "samples_per_sec": row.samples_per_sec, "step_time_ms": row.step_time_ms,
                           "param_count_m": row.param_count_m, "gmacs": row.gmacs, "macts_m": row.macts_m,
                           "form_evidence": why, "protocol": about.protocol,
                           # a model with nothing to fuse: this row times its training form too
                           "forms_alike": forms_alike(model, known)}
            run_uuid = str(uuid.uuid5(NAMESPACE, f"{name}|{row.model}|{row.img_size}|{row.batch}|"
                                                 f"{row.samples_per_sec!r}"))
            found.append(PublishedFigure(run_uuid, host, spec, about.target, about.precision, f"{citation} <{source.url(name)}>",
                                         None, row.ms_per_image, environment))
    return found, skipped


def store(engine, source: Source, extra_models: list[str] = ()) -> tuple[int, int, list[Skipped], int]:
    """Store the claims' models (and `extra_models`, timm names) of `source`: (added, already present, rows
    skipped, files read). ValueError for a file or a model name that is not timm's."""
    models = claim_models()
    for name in extra_models:
        models[name] = canonical_model(f"{baselines.PREFIX}{name}")
    found, skipped = figures(source, models)
    added, present = save_published(engine, found)
    return added, present, skipped, len(source.files)


# --- the bundle ----------------------------------------------------------------------------------------------------

def bundle(folder: Path, commit: str, out: Path) -> Path:
    """Write the bundle: each file's header and the rows of the claims' models, the commit, and the parameter
    counts of both forms of every baseline (counted here with timm, which the reader may not have)."""
    source = from_folder(folder, commit)
    names = claim_models()
    files = {}
    for name, text in source.files.items():
        parse_name(name)
        lines = text.splitlines()
        kept = [line for line in lines[1:] if line.split(",", 1)[0] in names]
        files[name] = "\n".join([lines[0], *kept]) + "\n"
    counts = {canonical: list(param_counts(canonical)) for canonical in names.values()
              if canonical.startswith(baselines.PREFIX) and param_counts(canonical)}
    out.write_text(json.dumps({
        "about": f"The rows of the models the claims use from every inference benchmark table of {REPOSITORY} "
                 "results/, unchanged, at the commit below; param_counts: both forms of each baseline, counted "
                 "with timm's own models (training form, then after timm.utils.model.reparameterize_model), in "
                 "millions to timm's two decimals.",
        "repository": REPOSITORY, "commit": source.commit, "param_counts": counts, "files": files}, indent=1) + "\n")
    return out


if __name__ == "__main__":  # python -m harness.ingest.published_timm RESULTS_DIR COMMIT [OUT]
    target = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(__file__).parent.parent / "data" / "timm-benchmark.json"
    print(bundle(Path(sys.argv[1]), sys.argv[2], target))
