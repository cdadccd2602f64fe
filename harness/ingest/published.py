"""Latencies from papers and model zoos, stored as runs marked `published` beside measured ones.

A table names its source (citation, url), the device and the runtime target it was timed on, and
one latency per model. Each becomes a run with no samples (the source gives one number), on a host
named after the device, never mixed with measured or imported runs: every table and plot labels
it. A run's UUID derives from the table and the model, so storing a table twice adds nothing and
two databases that stored it merge cleanly.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..baselines import own_resolution
from ..spec import FORMS, ModelSpec, Target, canonical_model
from ..store import PUBLISHED_HOST_PREFIX
from ..store.writes import PublishedFigure, save_published

NAMESPACE = uuid.UUID("5f2b1c9e-6a53-4c1e-9a1e-2f7d6c0b8a41")  # of published runs' UUIDs


@dataclass(frozen=True)
class Table:
    citation: str
    url: str
    device: str
    chip: str
    os: str
    target: str  # backend/device, like a measured run's
    resolution: int | None  # None: each model at its own (FastViT 256, baselines 224)
    form: str
    latency_ms: dict[str, float]
    precision: str = "n/a"  # of the artifact timed, where the source says (AI Hub: float -> fp32, w8a8 -> int8)


def bundled() -> list[Table]:
    return load(resources.files("harness") / "data" / "published.json")


def store_bundled(engine) -> int:
    """Store the bundled tables (idempotent); returns how many latencies were added."""
    return store_tables(engine, bundled())[0]


def bundled_summary() -> str:
    """One line naming the bundled tables, e.g. "iPhone 12 Pro (apple/ml-fastvit README.md ...)"."""
    return "; ".join(f"{t.device} ({t.citation.split(',')[0]})" for t in bundled())


def load(path) -> list[Table]:
    """The tables of a published-numbers file (the format of harness/data/published.json);
    ValueError naming the problem for a file that does not hold them."""
    try:
        data = json.loads(Path(str(path)).read_text())
        tables = [Table(**{k: t[k] for k in Table.__dataclass_fields__ if k in t}) for t in data["tables"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a published-numbers file ({exc})") from exc
    for t in tables:
        if not t.citation or "/" not in (t.target or "") or t.form not in FORMS or not t.latency_ms:
            raise ValueError(f"{path}: a table needs a citation, a target backend/device, a form {FORMS} "
                             f"and latencies (table of {t.device!r})")
        bad = {m: v for m, v in t.latency_ms.items() if not isinstance(v, (int, float)) or v <= 0}
        if bad:
            raise ValueError(f"{path}: latencies must be positive milliseconds, found {bad}")
        for model in t.latency_ms:
            canonical_model(model)  # ValueError naming the unknown model
    return tables


def summary(tables: list[Table], per_device: bool = False) -> list[str]:
    """A line per table (its device, target and source), or per device for a zoo's many one-job tables."""
    if not per_device:
        return [f"{t.device} {t.target}: {t.url}" for t in tables]
    found: dict[str, list[Table]] = {}
    for table in tables:
        found.setdefault(table.device, []).append(table)
    return [f"{device}: {len(group)} ({', '.join(sorted({t.target.split('/', 1)[0] for t in group}))}), "
            f"{group[0].citation.split(',')[0]}" for device, group in found.items()]


def store_tables(engine, tables: list[Table]) -> tuple[int, int]:
    """Store every latency of `tables` as a published run; returns (added, already present)."""
    figures = []
    for table in tables:
        host = {"hostname": PUBLISHED_HOST_PREFIX + table.device, "cpu_model": table.chip, "logical_cores": None,
                "os": table.os, "machine": "unknown"}
        backend, device = table.target.split("/", 1)
        for model, latency in table.latency_ms.items():
            name = canonical_model(model)
            resolution = table.resolution or own_resolution(256)(name)
            run_uuid = str(uuid.uuid5(NAMESPACE, f"{table.citation}|{table.target}|{name}|{resolution}"
                                                 + ("" if table.precision == "n/a" else f"|{table.precision}")))
            figures.append(PublishedFigure(run_uuid, host, ModelSpec(name, resolution, 1, table.form,
                                                                     weights="published"),
                                           Target(backend, device), table.precision,
                                           f"{table.citation} <{table.url}>", float(latency)))
    return save_published(engine, figures)
