"""Everything the commands print: each as a Listing (columns and rows), shown as a rich table on a
terminal or, with `--format json|csv`, as every column unrounded. Only valid runs show a latency."""
from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

import fastvit

from .analysis.claims import PAPER_PROTOCOLS, Check, MissingRuns, fabric, missing_runs
from .analysis.compare import HEADLINE, Comparison
from .analysis.delegation import BackendDelegation, delegation
from .analysis.explain import Breakdown
from .analysis.layers import LayerTable
from .analysis.size_claims import TOLERANCE as SIZE_TOLERANCE
from .analysis.size_claims import SizeCheck
from .protocol import TIMED_STATUSES, PeakResult
from .spec import Target, model_sort_key
from .store import Run, coverage, latest_runs

MEAN_ONLY = "*"  # marks a latency that is a mean: the vendor tool reported no median
NO_VALUE = "—"


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


@dataclass
class Listing:
    """Rows one command prints. `table` draws the terminal layout; without it, a plain table."""
    columns: list[str]
    rows: list[tuple]
    title: str = ""
    table: Callable[[Listing], Table] | None = None


def show(console: Console, listing: Listing, fmt: Format) -> None:
    if fmt == Format.json:
        console.print_json(json.dumps([dict(zip(listing.columns, r)) for r in listing.rows], default=str))
    elif fmt == Format.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(listing.columns)
        writer.writerows(listing.rows)
        sys.stdout.write(buffer.getvalue())
    else:
        console.print(listing.table(listing) if listing.table else plain_table(listing))


class SweepProgress:
    """A progress bar over a sweep's jobs (on stderr), with a line for each job that did not end ok."""

    def __init__(self, console: Console, total: int):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console)
        self.bar = self.progress.add_task("sweep", total=total)

    def __enter__(self) -> SweepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def started(self, job) -> None:
        self.progress.update(self.bar, description=job.describe())

    def done(self, job, result) -> None:
        if result.status != "ok":
            self.progress.console.print(f"[red]{result.status}[/red] {escape(job.describe())}: {escape(str(result.error))}")
        self.progress.advance(self.bar)


class LabProgress:
    """One progress bar per agent of a lab sweep (on stderr), with a line for each job that did not end ok."""

    def __init__(self, console: Console, totals: dict[str, int]):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console)
        self.bars = {name: self.progress.add_task(escape(name), total=total) for name, total in totals.items()}

    def __enter__(self) -> LabProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def done(self, agent: str, job, result) -> None:
        if result.status != "ok":
            self.progress.console.print(f"[red]{result.status}[/red] {escape(agent)}: {escape(job.describe())}: "
                                        f"{escape(str(result.error))}")
        self.progress.update(self.bars[agent], advance=1, description=escape(f"{agent}: {job.describe()}"))


def lab_devices_listing(found: dict[str, list[tuple[Target, str | None]]]) -> Listing:
    """`harness devices --cluster`: every agent's targets."""
    rows = [(agent, t.device, t.name, reason is None, reason) for agent, statuses in sorted(found.items())
            for t, reason in statuses]
    return Listing(["agent", "device", "target", "available", "reason"], rows, "targets of every agent")


def farm_devices_listing(found) -> Listing:
    """`harness devices --aihub`: the farm's devices (backends.aihub.FarmDevice) and the --device that names each."""
    rows = [(d.name, d.chipset, d.os, ", ".join(d.runtimes), f"aihub:{d.name}") for d in found]
    return Listing(["device", "chipset", "os", "runtimes", "--device"], rows, "Qualcomm AI Hub devices")


def skipped(console: Console, target: Target, reason: str) -> None:
    console.print(f"[yellow]skip[/yellow] {escape(target.name)}: {escape(reason)}")


def plain_table(listing: Listing) -> Table:
    table = Table(title=listing.title or None)
    for column in listing.columns:
        table.add_column(escape(str(column)))
    for row in listing.rows:
        table.add_row(*["" if v is None else (f"{v:.4g}" if isinstance(v, float) else escape(str(v))) for v in row])
    return table


def fmt_ms(value: float | None) -> str:
    return NO_VALUE if value is None else f"{value:.2f}"


FOOTPRINT_COLUMNS = ("load_ms", "model_mb", "artifact_mb")  # shown where a run has one
FOOTPRINT_NOTE = ("load: the artifact loaded until it can run; mem: the model's own share of the process's peak "
                 "memory (above what it held before loading); size: the artifact on disk")


TIMED = TIMED_STATUSES  # statuses whose run holds a latency (inaccurate and recompiled ones are used by no claim)
COMPILE_NOTE = ("compile s: torch.compile's cold compile (an empty cache) / warm (from that cache), seconds, before "
                "any timing; breaks: graph breaks (each runs the code between graphs in Python); a run that "
                "compiled again while timed is 'recompiled' and used by no claim")
AGREEMENT_NOTE = ("top-1 agree, cosine: against fp32 torch on held-out photographs (matching top-1 classes, mean "
                  "logit cosine similarity); an int8 run below the floor is 'inaccurate' and used by no claim")


def fmt_share(value: float | None) -> str:
    return NO_VALUE if value is None else f"{value:.0%}"


def fmt_cosine(value: float | None) -> str:
    return NO_VALUE if value is None else f"{value:.4f}"


def _figure(value: float | None) -> str:
    """A load time or a size: three significant figures are all these ever hold."""
    return NO_VALUE if value is None else f"{value:.3g}" if value < 100 else f"{value:.0f}"


def fmt_compile_seconds(cold_ms: float | None, warm_ms: float | None) -> str:
    if cold_ms is None:
        return NO_VALUE
    return f"{cold_ms / 1e3:.1f}" + (f" / {warm_ms / 1e3:.1f}" if warm_ms is not None else "")


def _ratio(value: float | None) -> str:
    return NO_VALUE if not value else f"{value:.2f}x"


# --- runs (harness run, import, report) -------------------------------------------------------

RUN_COLUMNS = ["run", "host", "model", "res", "batch", "form", "target", "precision", "threads", "status", "imported", "origin",
               "median_ms", "mean_ms", "p90_ms", "ci95_low_ms", "ci95_high_ms", "cv", "n", "speedup", "noisy",
               "other_cpu", "steal", "load_ms", "model_mb", "artifact_mb", "agreement_top1", "agreement_cosine",
               "accuracy_top1", "compile_ms", "compile_warm_ms", "graph_breaks", "recompiles", "error"]


def _spec_key(run: Run) -> tuple:
    """Runs that time the same model the same way, on any target (what a speedup compares)."""
    return (run.host_id, run.model, run.resolution, run.batch, run.form, run.weights, run.threads)


def _baseline_latencies(session: Session, baseline: str) -> dict[tuple, float]:
    """The latest valid latency of the `baseline` target for each model spec."""
    return {_spec_key(r): r.latency_ms for r in latest_runs(session, Run.target == baseline) if r.latency_ms}


def _run_row(r: Run, base: dict[tuple, float]) -> tuple:
    ok = r.status in TIMED  # an inaccurate run was timed like any other: its latency shows, no claim uses it
    latency = r.latency_ms if ok else None
    reference = base.get(_spec_key(r))
    return (r.id, r.host.hostname, r.model, r.resolution, r.batch, r.form, r.target, r.precision, r.threads, r.status,
            bool(r.imported), r.origin, r.median_ms if ok else None, r.mean_ms if ok else None, r.p90_ms if ok else None,
            r.median_ci_low_ms if ok else None, r.median_ci_high_ms if ok else None, r.cv if ok else None,
            r.iterations if ok else None, reference / latency if latency and reference else None, bool(r.noisy),
            r.other_cpu, r.steal, r.load_ms, r.model_peak_mb,
            r.artifact_bytes / 1e6 if r.artifact_bytes is not None else None, r.agreement_top1, r.agreement_cosine,
            r.accuracy_top1, r.compile_ms, r.compile_warm_ms, r.graph_breaks, r.recompiles, r.error)


def _runs_listing(session: Session, runs: list[Run], baseline: str, title: str) -> Listing:
    base = _baseline_latencies(session, baseline)
    ordered = sorted(runs, key=lambda r: (model_sort_key(r.model), r.resolution, r.batch, r.form, r.target, r.id))
    return Listing(RUN_COLUMNS, [_run_row(r, base) for r in ordered], title, _runs_table)


def latest_runs_listing(engine, baseline: str, models: list[str] | None = None) -> Listing:
    """The latest run (any status) of each model spec on each target: `harness report`."""
    with Session(engine) as session:
        criteria = [Run.model.in_(models)] if models else []
        runs = latest_runs(session, *criteria, valid_only=False)
        return _runs_listing(session, runs, baseline, f"latest runs (speedup vs {baseline})")


def runs_listing(engine, run_ids: list[int], baseline: str, title: str) -> Listing:
    with Session(engine) as session:
        runs = list(session.scalars(select(Run).where(Run.id.in_(run_ids))))
        return _runs_listing(session, runs, baseline, title)


def _runs_table(listing: Listing) -> Table:
    """A compact terminal table; json/csv carry every column unrounded."""
    table = Table(title=listing.title)
    # a lab's runs: a host column (published and imported runs say where they come from in their status)
    several_hosts = len({r["host"] for r in (dict(zip(listing.columns, row)) for row in listing.rows)
                         if r["origin"] == "measured"}) > 1
    costs = any(dict(zip(listing.columns, row))[c] is not None for row in listing.rows for c in FOOTPRINT_COLUMNS)
    # agreement with fp32 torch is the question a lower precision raises: shown where one was timed
    agreement = any(dict(zip(listing.columns, row))["precision"] not in ("fp32", "n/a") for row in listing.rows)
    compiled = any(dict(zip(listing.columns, row))["compile_ms"] is not None for row in listing.rows)
    headings = ("model", "res", "b", "form", "target", "prec", "thr", "status", "median ms", "p90 ms", "median 95% CI",
                "CV", "n", "speedup")
    for heading in ((("host",) if several_hosts else ()) + headings + (("load ms", "mem MiB", "size MB") if costs else ())
                    + (("top-1 agree", "cosine") if agreement else ()) + (("compile s", "breaks") if compiled else ())):
        table.add_column(heading, justify="left" if heading in ("host", "model", "form", "target", "status")
                         else "right")
    mean_only = noisy = False
    for row in listing.rows:
        r = dict(zip(listing.columns, row))
        ok = r["status"] in TIMED
        if ok and r["median_ms"] is None and r["mean_ms"] is not None:
            latency, mean_only = f"{r['mean_ms']:.2f}{MEAN_ONLY}", True
        else:
            latency = fmt_ms(r["median_ms"])
        status = ("[green]ok[/green]" if r["status"] == "ok" else f"[red]{r['status']}[/red]") + (f" ({r['origin']})" if r["origin"] != "measured" else "")
        if r["noisy"]:
            status += " [yellow]noisy[/yellow]"
            noisy = True
        table.add_row(
            *([escape(r["host"])] if several_hosts else []), escape(r["model"]), str(r["res"]), str(r["batch"]), r["form"], escape(r["target"]), r["precision"], str(r["threads"]),
            status, latency, fmt_ms(r["p90_ms"]),
            f"{r['ci95_low_ms']:.2f}-{r['ci95_high_ms']:.2f}" if r["ci95_low_ms"] is not None else NO_VALUE,
            f"{r['cv']:.1%}" if r["cv"] is not None else NO_VALUE, str(r["n"]) if r["n"] else NO_VALUE,
            _ratio(r["speedup"]), *([_figure(r[c]) for c in FOOTPRINT_COLUMNS] if costs else []),
            *([fmt_share(r["agreement_top1"]), fmt_cosine(r["agreement_cosine"])] if agreement else []),
            *([fmt_compile_seconds(r["compile_ms"], r["compile_warm_ms"]),
               str(r["graph_breaks"]) if r["graph_breaks"] is not None else NO_VALUE] if compiled else []),
        )
    captions = ([f"{MEAN_ONLY} mean: the vendor tool reported no median"] if mean_only else []) + (
        [NOISY_NOTE] if noisy else []) + (
        [FOOTPRINT_NOTE] if costs else []) + ([AGREEMENT_NOTE] if agreement else []) + (
        [COMPILE_NOTE] if compiled else [])
    table.caption = "\n".join(captions) or None
    return table


# --- targets and models -----------------------------------------------------------------------

def devices_listing(statuses: list[tuple[Target, str | None]]) -> Listing:
    rows = [(t.device, t.name, reason is None, reason) for t, reason in statuses]
    return Listing(["device", "target", "available", "reason"], rows, "targets", _devices_table)


def _devices_table(listing: Listing) -> Table:
    table = Table(title=listing.title)
    for column in listing.columns:
        table.add_column(column)
    for device, target, available, reason in listing.rows:
        table.add_row(escape(device), escape(target), "[green]yes[/green]" if available else "[red]no[/red]",
                      escape(reason or ""))
    return table


def models_listing(resolution: int) -> Listing:
    """FastViT variants: measured params and GMACs beside the paper's figures. ValueError for a bad resolution."""
    rows = []
    for name in fastvit.list_models():
        c, p = fastvit.count(name, resolution), fastvit.PAPER_TABLE[name]
        rows.append((name, round(c.params_train / 1e6, 2), round(c.gmacs, 2), p.params_m, p.gmacs, p.top1,
                     p.iphone12pro_ms))
    return Listing(["variant", "params_m", "gmacs", "paper_params_m", "paper_gmacs", "paper_top1",
                    "iphone12pro_ms"], rows, f"FastViT variants at {resolution}x{resolution}")


def merged_listing(merged, source: str) -> Listing:
    """What `harness merge` added, per kind of row (store.merge.Merged)."""
    rows = [(name, value) for name, value in vars(merged).items()]
    return Listing(["rows", "count"], rows, f"merged from {source} (runs_present: already here, skipped)")


COMPARE_COLUMNS = ["kind", "name", "resolution", "host", "target", "origin", "value", "paper_mobile", "paper_gpu",
                   "citation", "noisy", "note"]


def compare_listing(found: Comparison) -> Listing:
    """Long rows: a latency per (model, column), then a speedup per (headline claim, column), then per claim
    and host the targets it cannot be computed on ("missing": what they lack and the command that adds it)."""
    rows = [(found.metric.kind, m, found.resolution[m], c.host, c.target, c.origin, found.values[(m, c)], None, None,
             c.citation, (m, c) in found.noisy, None) for m in found.models for c in found.columns
            if (m, c) in found.values]
    rows += [("speedup", claim.key, None, c.host, c.target, c.origin, found.speedup(claim, c), claim.paper_mobile,
              claim.paper_gpu, c.citation, (claim.fast, c) in found.noisy or (claim.slow, c) in found.noisy, None)
             for claim in HEADLINE for c in found.columns if found.speedup(claim, c)]
    rows += [("missing", m.claim.key, None, m.host, ", ".join(m.targets), m.origin, None, m.claim.paper_mobile,
              m.claim.paper_gpu, None, False, f"needs {' and '.join(f'{n} at {r}px' for n, r in m.models)}: {m.remedy}")
             for m in found.missing]
    if found.hint:
        rows.append(("hint", "published", None, None, None, None, None, None, None, None, False, found.hint))
    title = (f"{found.metric.name} per device and target, {found.metric.unit} (fused form, batch 1, each model at its "
             "own resolution)")
    if found.metric.kind == "latency_ms":
        title += "; below, the paper's claims as speedups on each"
    return Listing(COMPARE_COLUMNS, rows, title, _compare_table)


def claim_label(claim) -> str:
    """'s12 vs mobileone_s4'; a claim between two forms of one model: 't8 reparam vs train'."""
    if claim.fast == claim.slow:
        return f"{claim.fast} {claim.fast_form} vs {claim.slow_form}"
    return f"{claim.fast} vs {claim.slow.removeprefix('timm:')}"


def _compare_table(listing: Listing) -> Table:
    columns: dict[tuple, str] = {}  # (host, target, origin) -> header, in first-seen order
    cells: dict[tuple, float] = {}
    noisy: set[tuple] = set()
    citations: dict[str, int] = {}
    missing: list[str] = []
    hints: list[str] = []
    for r in (dict(zip(listing.columns, row)) for row in listing.rows):
        if r["kind"] in ("missing", "hint"):
            if r["kind"] == "hint":
                hints.append(r["note"])
            else:
                claim = next(c for c in HEADLINE if c.key == r["name"])
                where = r["target"] if r["target"].count(",") < 2 else f"{r['target'].count(',') + 1} targets"
                missing.append(f"{claim_label(claim)} on {r['host']} {where}: {r['note']}")
            continue
        key = (r["host"], r["target"], r["origin"])
        if key not in columns:
            mark = ""
            if r["origin"] == "published":
                mark = f" [{citations.setdefault(r['citation'], len(citations) + 1)}]"
            columns[key] = escape(f"{r['host']}\n{r['target']}") + (f"\n({r['origin']}){mark}"
                                                                     if r["origin"] != "measured" else "")
        cells[(r["kind"], r["name"], key)] = r["value"]
        if r["noisy"]:
            noisy.add((r["kind"], r["name"], key))
    table = Table(title=listing.title)
    table.add_column("model / claim" if "speedup" in listing.title else "model")
    for header in columns.values():
        table.add_column(header, justify="right")
    kinds = {kind for kind, _, _ in cells} - {"speedup"}
    value_kind = next(iter(kinds), "latency_ms")  # one metric per comparison
    models = dict.fromkeys(name for kind, name, _ in cells if kind == value_kind)
    for model in models:
        table.add_row(escape(model), *[fmt_ms(cells.get((value_kind, model, key)))
                                       + (" [yellow]noisy[/yellow]" if (value_kind, model, key) in noisy else "")
                                       for key in columns])
    latency = value_kind == "latency_ms"  # the claims are about latency: the other metrics have no claim rows
    if models and latency:
        table.rows[len(models) - 1].end_section = True  # a rule between latencies and speedups
    for claim in HEADLINE if latency else ():  # every claim, so one no target computes yet shows what it lacks
        paper = ", ".join(f"{label} {figure}x" for label, figure in (("mobile", claim.paper_mobile),
                                                                     ("GPU", claim.paper_gpu)) if figure)
        values = [cells.get(("speedup", claim.key, key)) for key in columns]
        row = [f"[green]{v:.2f}x[/green]" if v and v >= claim.claimed else f"[red]{v:.2f}x[/red]" if v else NO_VALUE
               for v in values]
        table.add_row(escape(claim_label(claim) + (f" (paper: {paper})" if paper else " (faster?)")), *row)
    notes = [f"[{n}] {citation}" for citation, n in citations.items()]
    if latency:
        notes.append("speedup = latency of the slower model / the faster; green: reaches the paper's figure")
    if noisy:
        notes.append(NOISY_NOTE)
    if missing:
        notes.append("a claim without a speedup (—) lacks runs:")
        notes += [f"  {line}" for line in missing]
    notes += hints
    table.caption = escape("\n".join(notes))
    table.caption_justify = "left"
    return table


# --- the investigation ------------------------------------------------------------------------

SINGLE_PROCESS_MARK = "†"
PAPER_PROTOCOL_MARK = "*"
CLAIMED_NOTE = ("protocol: precision, batch and target, the same for both models; claimed: the paper's figure for "
                "that device (GPU: its desktop-GPU figure, mobile: its iPhone figure; a CPU: the weakest it claims); "
                "'as fast' holds unless the faster-claimed model is significantly slower")
NOISY_NOTE = "noisy: other processes or the hypervisor used the CPU while it was timed (columns other_cpu, steal)"
CLAIM_VERDICT_COLOURS = {"holds": "green", "does not hold": "red", "not enough data": "yellow"}


def claims_listing(checks: list[Check]) -> Listing:
    """One row per check (JSON/CSV); the terminal table shows the checks lacking the same run on several
    targets of one host as one row, with the one command that makes them (claims.missing_runs)."""
    groups = missing_runs(checks)
    rows = [(c.claim.key, c.claim.statement, c.host, c.target, c.threads or None, c.precision,
             c.batch if c.target != NO_VALUE else None, c.protocol, c.paper_protocol, c.runs[0], c.runs[1],
             c.fast_ms, c.slow_ms, c.speedup, c.low, c.high, c.claim.paper_mobile, c.claim.paper_gpu,
             claimed_here(c), c.verdict, c.single_process, c.noisy, c.missing) for c in checks]
    return Listing(["claim", "statement", "host", "target", "threads", "precision", "batch", "protocol",
                    "paper_protocol", "runs_fast", "runs_slow", "fast_ms", "slow_ms", "speedup", "ci95_low",
                    "ci95_high", "paper_mobile", "paper_gpu", "claimed_here", "verdict", "single_process", "noisy",
                    "missing"], rows,
                   "the paper's claims, re-checked per protocol (speedup = latency of the slower / the faster)",
                   lambda listing: _claims_table(listing, groups))


def claimed_here(check: Check) -> str:
    """What the verdict was judged against: the paper's figure for the device's fabric (or the weakest)."""
    figure, as_fast = check.figure
    where = fabric(check.device)
    text = "as fast" if as_fast else f"{figure}x" if figure != 1.0 else "faster"
    return text + (f" ({'GPU' if where == 'gpu' else where})" if where in check.claim.figures else " (weakest)")


def _claims_table(listing: Listing, groups: list[MissingRuns]) -> Table:
    """Claims with data first; a verdict without data says below the table what is missing."""
    table = Table(title=listing.title)
    notes = []
    shown: set[int] = set()
    for col in ("claim", "protocol", "thr", "runs", "fast ms", "slow ms", "speedup (95% CI)", "claimed", "verdict"):
        table.add_column(col, justify="left" if col in ("claim", "protocol", "claimed", "verdict") else "right")
    for row in listing.rows:
        c = dict(zip(listing.columns, row))
        group = next((i for i, g in enumerate(groups) if g.claim.key == c["claim"] and g.host == c["host"]
                      and c["target"] in g.targets and len(g.targets) > 1), None)
        if group is not None:  # one row for every target lacking the same run
            if group not in shown:
                shown.add(group)
                notes.append(groups[group].text)
                table.add_row(c["claim"], f"{len(groups[group].targets)} targets on {escape(c['host'])}",
                              NO_VALUE, NO_VALUE, NO_VALUE, NO_VALUE, NO_VALUE, escape(c["claimed_here"]),
                              f"[{CLAIM_VERDICT_COLOURS[c['verdict']]}]{c['verdict']}"
                              f"[/{CLAIM_VERDICT_COLOURS[c['verdict']]}]" + escape(f" [{len(notes)}]"))
            continue
        ci = f" ({c['ci95_low']:.2f}-{c['ci95_high']:.2f})" if c["ci95_low"] is not None else ""
        colour = CLAIM_VERDICT_COLOURS[c["verdict"]]
        verdict = f"[{colour}]{c['verdict']}[/{colour}]"
        if c["single_process"]:
            verdict += " " + SINGLE_PROCESS_MARK
        if c["noisy"]:
            verdict += " [yellow]noisy[/yellow]"
        if c["missing"] and (c["target"] != NO_VALUE or "(found" in c["missing"]):  # not for claims never tried
            notes.append(c["missing"])
            verdict += escape(f" [{len(notes)}]")
        protocol = escape(c["protocol"].replace(" (the paper's protocol)", "")) + (
            f" {PAPER_PROTOCOL_MARK}" if c["paper_protocol"] else "")
        table.add_row(c["claim"], protocol, str(c["threads"] or NO_VALUE),
                      f"{c['runs_fast']}+{c['runs_slow']}" if c["runs_fast"] else NO_VALUE,
                      fmt_ms(c["fast_ms"]), fmt_ms(c["slow_ms"]),
                      f"{c['speedup']:.2f}x{ci}" if c["speedup"] else NO_VALUE, escape(c["claimed_here"]), verdict)
    flags = [dict(zip(listing.columns, row)) for row in listing.rows]
    legend = [CLAIMED_NOTE]
    legend += ([f"{PAPER_PROTOCOL_MARK} the paper's own protocol for that device: "
                + "; ".join(f"{p.fabric}: {p.description}" for p in PAPER_PROTOCOLS.values())]
               if any(c["paper_protocol"] for c in flags) else [])
    legend += ([f"{SINGLE_PROCESS_MARK} rests on one process per side: a fresh process can land far from the last; "
               "rerun with --repeats auto"] if any(c["single_process"] for c in flags) else [])
    legend += [f"{NOISY_NOTE}; the verdict may not survive a quiet rerun"] if any(c["noisy"] for c in flags) else []
    lines = legend + [f"[{i}] {note}" for i, note in enumerate(notes, 1)]
    if lines:
        table.caption = "\n".join(escape(line) for line in lines)
        table.caption_justify = "left"
    return table


def size_claims_listing(checks: list[SizeCheck]) -> Listing:
    """The paper's size and FLOP claims, from counted parameters and MACs (analysis.size_claims)."""
    rows = [(c.claim.key, c.claim.statement, c.claim.model, c.claim.resolution, c.claim.other,
             c.claim.other_resolution, c.params, c.other_params, c.macs, c.other_macs, c.smaller, c.claim.smaller,
             c.fewer_macs, c.claim.fewer_macs, c.other_source, c.verdict) for c in checks]
    return Listing(["claim", "statement", "model", "resolution", "other", "other_resolution", "params", "other_params",
                    "macs", "other_macs", "smaller", "claimed_smaller", "fewer_macs", "claimed_fewer_macs",
                    "other_source", "verdict"], rows,
                   "the paper's size and FLOP claims, from counted parameters and MACs", _size_claims_table)


def _size_claims_table(listing: Listing) -> Table:
    table = Table(title=listing.title)
    for col in ("claim", "model", "params M", "GMACs", "other", "params M ", "GMACs ", "smaller (claimed)",
                "fewer MACs (claimed)", "verdict"):
        table.add_column(col, justify="left" if col in ("claim", "model", "other", "verdict") else "right")
    notes = []
    for row in listing.rows:
        c = dict(zip(listing.columns, row))
        colour = CLAIM_VERDICT_COLOURS[c["verdict"]]
        other = f"{c['other'].removeprefix('timm:')} {c['other_resolution']}px"
        if c["other_source"] != "counted":
            notes.append(f"{c['other']}: {c['other_source']}")
            other += f" [{len(notes)}]"
        table.add_row(c["claim"], f"{c['model']} {c['resolution']}px", f"{c['params'] / 1e6:.1f}",
                      f"{c['macs'] / 1e9:.2f}", escape(other), f"{c['other_params'] / 1e6:.1f}",
                      f"{c['other_macs'] / 1e9:.2f}", f"{c['smaller']:.1%} ({c['claimed_smaller']:.1%})",
                      f"{c['fewer_macs']:.1%} ({c['claimed_fewer_macs']:.1%})", f"[{colour}]{c['verdict']}[/{colour}]")
    table.caption = "\n".join(escape(line) for line in [SIZE_NOTE] + [f"[{i}] {n}" for i, n in enumerate(notes, 1)])
    table.caption_justify = "left"
    return table


SIZE_NOTE = ("params: FastViT's training form, everything included (timm's count, the paper's); MACs: the inference "
             f"form, one image; a claim holds when both counted reductions reach the paper's within "
             f"{SIZE_TOLERANCE * 100:g} percentage point")


LAYER_COLUMNS = ["layer", "op_class", "count", "target", "ms_per_call", "net_ms", "total_ms", "share", "gflops"]


def layers_listing(table: LayerTable, model: str, resolution: int) -> Listing:
    """Long rows: one per (layer, target); then per target the overhead, the sum of layers and the
    whole model (layer names in angle brackets)."""
    rows = []
    for row in table.rows:
        for target in table.targets:
            if target in row.ms:
                net = row.net_ms(target, table.overhead)
                rows.append((row.signature, row.op_class, row.count, target, row.ms[target], net,
                             table.total_ms(row, target), table.share(row, target),
                             row.flops / (net * 1e6) if row.flops and net else None))
    for target in table.targets:
        rows.append(("<overhead per call>", "overhead", 1, target, table.overhead.get(target), None, None, None, None))
        rows.append(("<sum of layers>", "sum", None, target, None, None, table.sum_ms(target), 1.0, None))
        whole = table.whole_ms.get(target)
        rows.append(("<whole model>", "whole", 1, target, whole, None, whole, table.ratio_to_whole(target), None))
    return Listing(LAYER_COLUMNS, rows, f"{model} ({resolution}px) layer by layer: ms per call less the runtime's "
                   "empty-model overhead, x count, share of the sum", lambda listing: _layers_table(listing, table))


def _layers_table(listing: Listing, table: LayerTable) -> Table:
    out = Table(title=listing.title)
    out.add_column("layer (count)")
    for target in table.targets:
        out.add_column(escape(target), justify="right")
    for row in table.rows:
        cells = []
        for target in table.targets:
            total = table.total_ms(row, target)
            cells.append(NO_VALUE if total is None else
                         f"{row.net_ms(target, table.overhead):.3f} x{row.count} = {total:.2f} "
                         f"({table.share(row, target):.0%})")
        out.add_row(escape(f"{row.signature} ({row.count})"), *cells, end_section=row is table.rows[-1])
    out.add_row("runtime overhead per call", *[fmt_ms(table.overhead.get(t)) for t in table.targets])
    out.add_row("sum of layers", *[f"{table.sum_ms(t):.2f}" for t in table.targets])
    out.add_row("whole model (latest run)", *[fmt_ms(table.whole_ms.get(t)) for t in table.targets])
    out.add_row("sum / whole", *[f"{r:.2f}" if (r := table.ratio_to_whole(t)) else NO_VALUE for t in table.targets])
    lines = [f"{o.target} runs {o.signature} {o.ratio:.1f}x slower than {o.best_target} "
             f"({o.share:.0%} of its sum of layers" + (f", {o.gflops:.1f} GFLOP/s)" if o.gflops else ")")
             for o in table.outliers()[:8]]
    out.caption = escape("\n".join(["layers 2x or more slower than on the best target of this host:", *lines])
                         if lines else "no layer is 2x slower on one target than on the best")
    out.caption_justify = "left"
    return out


def views_listing(found: Breakdown, table: LayerTable) -> Listing:
    """explain's two views side by side, per op class and target: the runtime's profiler (shares of
    its profile) and the layers timed alone (shares of their sum), and how far the shares agree."""
    rows = []
    for i, t in enumerate(found.targets):
        target = t["target"]
        if target not in table.targets:
            continue
        layered = table.by_class(target)
        layered_sum = sum(layered.values())
        for row in found.rows:
            cell = row["cells"][i]
            share_l = layered.get(row["op_class"], 0.0) / layered_sum if layered_sum else None
            if cell or share_l:
                share_p = cell["share"] if cell else 0.0
                rows.append((row["op_class"], target, cell["ms"] if cell else None, share_p,
                             layered.get(row["op_class"]), share_l,
                             share_p - share_l if share_l is not None else None))
    return Listing(["op_class", "target", "profiler_ms", "profiler_share", "layers_ms", "layers_share",
                    "share_difference"], rows, "two views: the profiler's and the layers timed alone "
                   "(attention blocks are one layer: their matmuls, softmax and linears together)")


def explain_listing(found: Breakdown, model: str, form: str, resolution: int) -> Listing:
    """One row per (op class, target): long form, so json/csv need no nesting."""
    rows = [(row["op_class"], t["target"], t["run_id"], t["median_ms"], t["noisy"], cell["ms"], cell["share"])
            for row in found.rows for t, cell in zip(found.targets, row["cells"]) if cell]
    return Listing(["op_class", "target", "run", "median_ms", "noisy", "ms", "share"], rows,
                   f"where {model} ({form}, {resolution}px) spends its time, ms per inference (share)", _explain_table)


def _explain_table(listing: Listing) -> Table:
    """The long rows pivoted back: op classes down, targets across."""
    targets = {}  # target -> (timed median, noisy), in first-seen order
    cells: dict[tuple[str, str], tuple[float, float]] = {}
    for op_class, target, _run, median_ms, noisy, ms, share in listing.rows:
        targets.setdefault(target, (median_ms, noisy))
        cells[(op_class, target)] = (ms, share)
    table = Table(title=listing.title)
    table.add_column("op class")
    for target, (median_ms, noisy) in targets.items():
        mark = " [yellow]noisy[/yellow]" if noisy else ""
        table.add_column(f"{escape(target)}\n{fmt_ms(median_ms)} ms timed{mark}", justify="right")
    for op_class in dict.fromkeys(row[0] for row in listing.rows):
        table.add_row(op_class, *[f"{cells[(op_class, t)][0]:.2f} ({cells[(op_class, t)][1]:.0%})"
                                  if (op_class, t) in cells else NO_VALUE for t in targets])
    table.caption = "profiled separately after timing; profilers add overhead, so compare shares across targets"
    if any(noisy for _, noisy in targets.values()):
        table.caption += "\n" + NOISY_NOTE
    return table


def peaks_listing(outcomes: list[tuple[Target, PeakResult]], size: int, threads: int) -> Listing:
    rows = [(t.name, r.gflops, r.status, r.error) for t, r in outcomes]
    return Listing(["target", "gflops", "status", "error"], rows,
                   f"dense GEMM peak, {size}x{size} fp32, {threads} threads", _peaks_table)


def _peaks_table(listing: Listing) -> Table:
    table = Table(title=listing.title)
    for col in ("target", "GFLOP/s", "status"):
        table.add_column(col)
    for target, gflops, status, error in listing.rows:
        table.add_row(escape(target), f"{gflops:.1f}" if gflops is not None else NO_VALUE,
                      "[green]stored[/green]" if status == "ok" else f"[red]{status}[/red]: {escape(str(error))}")
    return table


# --- delegation coverage ------------------------------------------------------------------------

COVERAGE_COLUMNS = ["backend", "partitioner", "op_class", "op_type", "kernel", "depthwise", "delegated_nodes",
                    "portable_nodes", "delegated_flops", "portable_flops"]


def coverage_listing(engine, model: str, resolution: int, form: str) -> Listing:
    """Every stored delegation coverage of one model spec (`harness coverage`, explain): one row per op,
    the table per backend and op class (analysis.delegation)."""
    with Session(engine) as session:
        rows = [tuple(getattr(r, c) for c in COVERAGE_COLUMNS) for r in coverage(session, model, resolution, form)]
    found = delegation(engine, model, resolution, form)
    return Listing(COVERAGE_COLUMNS, rows, f"which ops of {model} ({form}, {resolution}px) each delegate takes",
                   lambda listing: _coverage_table(listing, found))


def _coverage_table(listing: Listing, found: list[BackendDelegation]) -> Table:
    """Per backend and op class: nodes delegated / left on portable kernels, and the FLOPs delegated."""
    table = Table(title=listing.title)
    for col in ("backend", "op class", "delegated", "portable", "FLOPs delegated"):
        table.add_column(col, justify="left" if col in ("backend", "op class") else "right")
    for b in found:
        for c in b.classes.values():
            table.add_row(escape(b.backend), c.op_class, str(c.delegated_nodes),
                          f"[red]{c.portable_nodes}[/red]" if c.portable_nodes else "0",
                          f"{c.flop_share:.1%}" if c.flop_share is not None else NO_VALUE)
    table.caption = "; ".join(
        f"{escape(b.backend)}: {b.delegated_nodes} of {b.nodes} nodes, {b.flop_share:.1%} of FLOPs delegated"
        + (f" (portable: {escape(', '.join(b.left))})" if b.left else "") for b in found)
    return table


# --- low-precision coverage -----------------------------------------------------------------------

PRECISION_COVERAGE_COLUMNS = ["backend", "precision", "op_class", "low_nodes", "float_nodes", "low_flops",
                              "float_flops"]


def precision_coverage_listing(found, model: str, resolution: int, form: str) -> Listing:
    """harness.analysis.precision.coverage(): which op classes each runtime computes in int8."""
    rows = [(b.backend, b.precision, c.op_class, c.low_nodes, c.float_nodes, c.low_flops, c.float_flops)
            for b in found for c in sorted(b.classes.values(), key=lambda c: -(c.low_flops + c.float_flops))]
    return Listing(PRECISION_COVERAGE_COLUMNS, rows,
                   f"which ops of {model} ({form}, {resolution}px) each runtime computes in low precision",
                   lambda listing: _precision_coverage_table(listing, found))


def _precision_coverage_table(listing: Listing, found) -> Table:
    table = Table(title=listing.title)
    for col in ("backend", "precision", "op class", "int8 nodes", "float nodes", "FLOPs in int8"):
        table.add_column(col, justify="left" if col in ("backend", "precision", "op class") else "right")
    for backend, precision, op_class, low, floating, low_flops, float_flops in listing.rows:
        total = low_flops + float_flops
        table.add_row(escape(backend), precision, op_class, str(low), f"[red]{floating}[/red]" if floating else "0",
                      f"{low_flops / total:.1%}" if total else NO_VALUE)
    table.caption = "\n".join(
        f"{escape(b.backend)} {b.precision}: {b.low_nodes} of {b.nodes} nodes"
        + (f", {b.flop_share:.1%} of FLOPs" if b.flop_share is not None else "") + " in int8"
        + (f"; kept in float: {', '.join(b.kept_float)}" if b.kept_float else "")
        for b in found)
    return table


# --- harness doctor -----------------------------------------------------------------------------

def doctor_listing(findings) -> Listing:
    return Listing(["item", "value", "advice"], [(f.item, f.value, f.advice or None) for f in findings],
                   "what on this machine will move a number", _doctor_table)


def _doctor_table(listing: Listing) -> Table:
    table = Table(title=listing.title)
    for column in listing.columns:
        table.add_column(column)
    for item, value, advice in listing.rows:
        verdict = (f"[yellow]{escape(advice)}[/yellow]" if advice else NO_VALUE
                   if value.startswith(("not exposed", "none attached")) else "[green]ok[/green]")
        table.add_row(item, escape(value), verdict)
    return table
