"""The paper's claims as tables: speed per protocol (analysis.claims) and size (analysis.size_claims)."""
from __future__ import annotations

from ..analysis.claims import PAPER_PROTOCOLS, Check, missing_runs
from ..analysis.record import VERDICTS, RecordCell
from ..analysis.size_claims import TOLERANCE as SIZE_TOLERANCE
from ..analysis.size_claims import SizeCheck
from .formats import Interval
from .table import Cell, Column, Link, Mark, Row, Table, table

SINGLE_PROCESS_MARK = "†"
PAPER_PROTOCOL_MARK = Mark("*", "(the paper's protocol)")
CLAIMED_NOTE = ("protocol: precision, batch and target, the same for both models; claimed: the paper's figure for "
                "that device (GPU: its desktop-GPU figure, mobile: its iPhone figure; a CPU: the weakest it claims); "
                "'as fast' holds unless the faster-claimed model is significantly slower")
NOISY_NOTE = "noisy: other processes or the hypervisor used the CPU while it was timed (columns other_cpu, steal)"
VERDICT_TONES = {"holds": "good", "does not hold": "bad", "not enough data": "warn"}
SPEEDUP_NOTE = "speedup = latency of the slower model / the faster"

# Shown in this order; JSON and CSV carry every `data` column of each check, unrounded.
_hidden = dict(shown=False)
CLAIM_COLUMNS = [Column("claim", label=True), Column("statement", **_hidden), Column("protocol"), Column("host"),
                 Column("target", **_hidden), Column("threads", "thr", "count"), Column("precision", **_hidden),
                 Column("batch", **_hidden), Column("paper_protocol", **_hidden),
                 Column("runs", "runs", "pair", data=False), Column("runs_fast", **_hidden),
                 Column("runs_slow", **_hidden), Column("fast_ms", "fast ms", "ms"), Column("slow_ms", "slow ms", "ms"),
                 Column("speedup", "speedup (95% CI)", "ratio"), Column("ci95_low", **_hidden),
                 Column("ci95_high", **_hidden), Column("paper_mobile", **_hidden), Column("paper_gpu", **_hidden),
                 Column("claimed_here", "claimed"), Column("verdict"), Column("single_process", **_hidden),
                 Column("noisy", **_hidden), Column("missing", **_hidden)]


def _record(c: Check) -> Row:
    """A check as JSON and CSV print it: every field, unrounded."""
    return Row({"claim": c.claim.key, "statement": c.claim.statement, "host": c.host, "target": c.target,
                "threads": c.threads or None, "precision": c.precision, "batch": c.batch if c.target != "—" else None,
                "protocol": c.protocol, "paper_protocol": c.paper_protocol, "runs_fast": c.runs[0],
                "runs_slow": c.runs[1], "fast_ms": c.fast_ms, "slow_ms": c.slow_ms, "speedup": c.speedup,
                "ci95_low": c.low, "ci95_high": c.high, "paper_mobile": c.claim.paper_mobile,
                "paper_gpu": c.claim.paper_gpu, "claimed_here": c.claimed_here, "verdict": c.verdict,
                "single_process": c.single_process, "noisy": c.noisy, "missing": c.missing})


def claims_table(checks: list[Check]) -> Table:
    """One row per check, except that the checks of one claim and host lacking the same run on several targets
    share a row and one command (claims.missing_runs); every check is a JSON record."""
    groups = [g for g in missing_runs(checks) if len(g.targets) > 1]
    notes: list[str] = []
    rows: list[Row] = []
    shown_groups: set[int] = set()
    for c in checks:
        attributes = {"claim": c.claim.key, "device": c.device}
        group = next((i for i, g in enumerate(groups) if g.claim.key == c.claim.key and g.host == c.host
                      and c.target in g.targets), None)
        if group is not None:  # one row for every target lacking the same run
            if group not in shown_groups:
                shown_groups.add(group)
                notes.append(groups[group].text)
                rows.append(Row({"claim": c.claim.key, "host": c.host,
                                 "protocol": f"{len(groups[group].targets)} targets on {c.host}",
                                 "claimed_here": c.claimed_here,
                                 "verdict": Cell(c.verdict, (f"[{len(notes)}]",), VERDICT_TONES[c.verdict])},
                                attributes=attributes))
            continue
        marks = ((SINGLE_PROCESS_MARK,) if c.single_process else ()) + (("noisy",) if c.noisy else ())
        if c.missing and (c.target != "—" or "(found" in c.missing):  # not for claims never tried
            notes.append(c.missing)
            marks += (f"[{len(notes)}]",)
        rows.append(Row({
            "claim": c.claim.key, "host": c.host,
            "protocol": Cell(c.protocol.replace(" (the paper's protocol)", ""),
                             (PAPER_PROTOCOL_MARK,) if c.paper_protocol else ()),
            "threads": c.threads or None, "runs": c.runs, "fast_ms": c.fast_ms, "slow_ms": c.slow_ms,
            "speedup": Interval(c.speedup, c.low, c.high), "claimed_here": c.claimed_here,
            "verdict": Cell(c.verdict, marks, VERDICT_TONES[c.verdict])}, attributes=attributes))
    legend = [f"{SPEEDUP_NOTE}; {CLAIMED_NOTE}"]
    if any(c.paper_protocol for c in checks):
        legend.append(f"{PAPER_PROTOCOL_MARK} the paper's own protocol for that device: "
                      + "; ".join(f"{p.fabric}: {p.description}" for p in PAPER_PROTOCOLS.values()))
    if any(c.single_process for c in checks):
        legend.append(f"{SINGLE_PROCESS_MARK} rests on one process per side: a fresh process can land far from the "
                      "last; rerun with --repeats auto")
    if any(c.noisy for c in checks):
        legend.append(f"{NOISY_NOTE}; the verdict may not survive a quiet rerun")
    return Table("claims", "the paper's claims, re-checked per protocol (speedup = latency of the slower / the faster)",
                 CLAIM_COLUMNS, rows, legend + [f"[{i}] {note}" for i, note in enumerate(notes, 1)],
                 record_rows=[_record(c) for c in checks])


def definitions_table(claims) -> Table:
    """What each claim says, as its checks name it, with the paper's figures and where the claim comes from."""
    return table("claim-definitions", "the claims", [
        Column("claim", label=True), Column("label", "between"), Column("statement"),
        Column("paper_figures", "paper's figures", kind="blank"), Column("source")],
        [(c.key, c.label, c.statement, c.paper_figures, c.source) for c in claims])


def record_table(cells: list[RecordCell]) -> Table:
    """Per claim and kind of device: the devices (measured here, imported, published) it holds on, does not hold
    on, holds on under some protocols and not others, and cannot be judged on; each cell leads to its checks."""
    rows = []
    for cell in cells:
        link = Link("claims", (("claim", cell.claim), ("fabric", cell.fabric)))
        rows.append(Row({"claim": cell.claim, "fabric": cell.fabric,
                         **{verdict: Cell([d.name for d in cell.devices.get(verdict, [])], link=link,
                                          tone=RECORD_TONES[verdict] if cell.count(verdict) else None)
                            for verdict in VERDICTS}}))
    return Table("record", "the claims on every device with numbers: devices per verdict", [
        Column("claim", label=True), Column("fabric", "devices"),
        *(Column(v, v, "devices") for v in VERDICTS)], rows,
        ["a device holds (or does not) where every protocol it was judged under says so, 'mixed' where they "
         "disagree (eager and compiled, say), and cannot be judged where no protocol has both models"])


RECORD_TONES = {"holds": "good", "does not hold": "bad", "mixed": "warn", "cannot be judged": None}


SIZE_NOTE = ("params: FastViT's training form, everything included (timm's count, the paper's); MACs: the inference "
             f"form, one image; a claim holds when both counted reductions reach the paper's within "
             f"{SIZE_TOLERANCE * 100:g} percentage point")


def size_claims_table(checks: list[SizeCheck]) -> Table:
    """The paper's size and FLOP claims, from counted parameters and MACs."""
    notes = []
    rows = []
    for c in checks:
        other = f"{c.claim.other.removeprefix('timm:')} {c.claim.other_resolution}px"
        marks = ()
        if c.other_source != "counted":
            notes.append(f"{c.claim.other}: {c.other_source}")
            marks = (f"[{len(notes)}]",)
        rows.append(Row({
            "claim": c.claim.key, "statement": c.claim.statement, "model": c.claim.model,
            "resolution": c.claim.resolution, "other": c.claim.other, "other_resolution": c.claim.other_resolution,
            "params": c.params, "other_params": c.other_params, "macs": c.macs, "other_macs": c.other_macs,
            "smaller": c.smaller, "claimed_smaller": c.claim.smaller, "fewer_macs": c.fewer_macs,
            "claimed_fewer_macs": c.claim.fewer_macs, "other_source": c.other_source,
            "verdict": Cell(c.verdict, tone=VERDICT_TONES[c.verdict]),
            "model_shown": f"{c.claim.model} {c.claim.resolution}px", "params_m": c.params / 1e6,
            "gmacs": c.macs / 1e9, "other_shown": Cell(other, marks), "other_params_m": c.other_params / 1e6,
            "other_gmacs": c.other_macs / 1e9, "smaller_shown": (c.smaller, c.claim.smaller),
            "fewer_shown": (c.fewer_macs, c.claim.fewer_macs)}))
    hidden = dict(shown=False)
    shown = dict(data=False)
    columns = [Column("claim", label=True), Column("statement", **hidden), Column("model", **hidden),
               Column("resolution", **hidden), Column("other", **hidden), Column("other_resolution", **hidden),
               Column("params", **hidden), Column("other_params", **hidden), Column("macs", **hidden),
               Column("other_macs", **hidden), Column("smaller", **hidden), Column("claimed_smaller", **hidden),
               Column("fewer_macs", **hidden), Column("claimed_fewer_macs", **hidden),
               Column("other_source", **hidden),
               Column("model_shown", "model", **shown), Column("params_m", "params M", "decimal", 1, **shown),
               Column("gmacs", "GMACs", "decimal", **shown), Column("other_shown", "other", **shown),
               Column("other_params_m", "params M", "decimal", 1, **shown),
               Column("other_gmacs", "GMACs", "decimal", **shown),
               Column("smaller_shown", "smaller (claimed)", "claimed_share", **shown),
               Column("fewer_shown", "fewer MACs (claimed)", "claimed_share", **shown), Column("verdict")]
    return table("size-claims", "the paper's size and FLOP claims, from counted parameters and MACs", columns, rows,
                 notes=[SIZE_NOTE] + [f"[{i}] {n}" for i, n in enumerate(notes, 1)])
