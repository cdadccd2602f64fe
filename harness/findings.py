"""A short markdown summary of what the database says: latencies, claims, where the time goes."""
from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

import fastvit

from .claims import check_all
from .explain import breakdown
from .storage import Host, Run, Sweep


def cpu_slug(cpu_model: str) -> str:
    text = re.sub(r"\((r|tm)\)|cpu|@.*$|\d+-core processor", "", cpu_model.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown-cpu"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def render(engine, resolution_of) -> tuple[str, str]:
    """(markdown, cpu slug) for the host with the most runs."""
    with Session(engine) as session:
        runs = session.scalars(select(Run).where(Run.imported.is_(False)).order_by(Run.id)).all()
        if not runs:
            raise ValueError("the database holds no runs of this harness yet")
        counts = defaultdict(int)
        for r in runs:
            counts[r.host_id] += 1
        host = session.get(Host, max(counts, key=counts.get))
        runs = [r for r in runs if r.host_id == host.id]
        sweeps = session.scalars(select(Sweep).where(Sweep.id.in_({r.sweep_id for r in runs if r.sweep_id}))
                                 .order_by(Sweep.id)).all()
        env = runs[-1].environment or {}
        versions = {}
        for r in runs:  # each run records its own runtime's versions
            versions.update((r.environment or {}).get("versions") or {})
        latest = {}
        for r in runs:
            if r.status == "ok" and r.batch == 1 and r.resolution == resolution_of(r.model):
                latest[(r.model, r.form, r.target)] = r
    order = {m: i for i, m in enumerate(fastvit.list_models())}
    models = sorted({m for m, _, _ in latest}, key=lambda m: (order.get(m, 99), m))
    targets = sorted({t for _, _, t in latest})
    lines = [f"# Findings on {host.cpu_model}", "",
             f"{host.logical_cores} logical cores, {env.get('threads')} threads per runtime, {host.os}; "
             f"generated {datetime.now(timezone.utc):%Y-%m-%d} from {len(runs)} runs. Versions: "
             + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + ".", "",
             "Produced by:", "", "```"]
    lines += [s.command for s in sweeps] + ["harness findings", "```", "",
                                            "## Median latency, fused form, batch 1 (ms)", "",
                                            "| model | res | " + " | ".join(targets) + " | fastest |",
                                            "|---|---|" + "---|" * (len(targets) + 1)]
    for m in models:
        cells = {t: latest.get((m, "reparam", t)) for t in targets}
        valid = {t: r.median_ms for t, r in cells.items() if r and r.median_ms}
        if not valid:
            continue
        best = min(valid, key=valid.get)
        lines.append(f"| {m} | {resolution_of(m)} | " + " | ".join(_fmt(valid.get(t)) for t in targets)
                     + f" | {best} |")
    lines += ["", "## The paper's claims on this CPU", "",
              "| claim | target | speedup (95% CI) | paper (mobile / GPU) | verdict |", "|---|---|---|---|---|"]
    for c in check_all(engine):
        if c.host not in (host.hostname, "—"):
            continue
        ci = f" ({c.low:.2f}-{c.high:.2f})" if c.low is not None else ""
        paper = " / ".join(f"{f}x" if f else "—" for f in (c.claim.paper_mobile, c.claim.paper_gpu))
        speed = f"{c.speedup:.2f}x{ci}" if c.speedup else "—"
        lines.append(f"| {c.claim.key} | {c.target} | {speed} | {paper} | {c.verdict} |")
    for model in ("sa12", "t8"):
        found, rows = breakdown(engine, model, resolution_of(model), "reparam", "cpu")
        if not found:
            continue
        lines += ["", f"## Where {model} spends its time (share of profiled time)", "",
                  "| op class | " + " | ".join(t["target"] for t in found) + " |", "|---|" + "---|" * len(found)]
        for row in rows[:8]:
            lines.append(f"| {row['op_class']} | " + " | ".join(f"{c['share']:.0%}" if c else "—"
                                                              for c in row["cells"]) + " |")
    return "\n".join(lines) + "\n", cpu_slug(host.cpu_model)
