"""Runs as a table (analysis.runs): `harness run`, `import` and `report`, and the model page's latest runs."""
from __future__ import annotations

from ..analysis.runs import FIELDS, RunSummary
from ..protocol import TIMED_STATUSES
from .claims import NOISY_NOTE
from .formats import MEAN_ONLY
from .table import Cell, Column, Link, Row, Table

FOOTPRINT = ("load_ms", "model_mb", "artifact_mb")  # shown where a run has one
FOOTPRINT_NOTE = ("load: the artifact loaded until it can run; mem: the model's own share of the process's peak "
                  "memory (above what it held before loading); size: the artifact on disk")
COMPILE_NOTE = ("compile s: torch.compile's cold compile (an empty cache) / warm (from that cache), seconds, before "
                "any timing; breaks: graph breaks (each runs the code between graphs in Python); a run that "
                "compiled again while timed is 'recompiled' and used by no claim")
REUSED_MARK = "reused"
REUSED_NOTE = ("compile s (reused): the cold compile was measured once, in a fresh process, by an earlier run of the "
               "same model, versions, mode and host, and is kept; the run compiled warm itself (harness run "
               "--cold-compile measures it again)")
AGREEMENT_NOTE = ("top-1 agree, cosine: against fp32 torch on held-out photographs (matching top-1 classes, mean "
                  "logit cosine similarity); an int8 run below the floor is 'inaccurate' and used by no claim")
STATUS_TONES = {"ok": "good", "screened": None}  # screened: valid, timed briefly by harness advise


def runs_table(runs: list[RunSummary], title: str, links: bool = False) -> Table:
    """A compact table (the columns a set of runs gives values to); JSON and CSV carry every field unrounded.
    links: each row leads to its run page and its history (the dashboard's)."""
    fields = [r.fields for r in runs]
    several_hosts = len({f["host"] for f in fields if f["origin"] == "measured"}) > 1
    costs = any(f[c] is not None for f in fields for c in FOOTPRINT)
    agreement = any(f["precision"] not in ("fp32", "n/a") for f in fields)  # the question a lower precision raises
    compiled = any(f["compile_ms"] is not None for f in fields)
    shown = {"host": several_hosts, "load_ms": costs, "model_mb": costs, "artifact_mb": costs,
             "agreement_top1": agreement, "agreement_cosine": agreement, "compile": compiled, "graph_breaks": compiled,
             "link": links, "history": links}
    columns = [Column(key, heading, kind, digits, shown=shown.get(key, True), data=key in FIELDS)
               for key, heading, kind, digits in (
        ("host", "host", "text", None), ("model", "model", "text", None), ("res", "res", "count", None),
        ("batch", "b", "count", None), ("form", "form", "text", None), ("target", "target", "text", None),
        ("precision", "prec", "text", None), ("threads", "thr", "count", None), ("status", "status", "text", None),
        ("median_ms", "median ms", "ms", None), ("p90_ms", "p90 ms", "ms", None),
        ("ci", "median 95% CI", "range", None), ("cv", "CV", "share", 1), ("n", "n", "count", None),
        ("speedup", "speedup", "ratio", None), ("load_ms", "load ms", "figure", None),
        ("model_mb", "mem MiB", "figure", None), ("artifact_mb", "size MB", "figure", None),
        ("agreement_top1", "top-1 agree", "share", None), ("agreement_cosine", "cosine", "cosine", None),
        ("compile", "compile s", "compile", None), ("graph_breaks", "breaks", "count", None))]
    columns += [Column(key, shown=False) for key in FIELDS if key not in {c.key for c in columns}]
    columns += [Column("link", "run", shown=links, data=False), Column("history", shown=links, data=False, web_only=True)]
    rows = []
    mean_only = noisy = reused = False
    for run in runs:
        f = dict(run.fields)
        values = dict(f)
        if f["status"] in TIMED_STATUSES and f["median_ms"] is None and f["mean_ms"] is not None:
            values["median_ms"], mean_only = Cell(f["mean_ms"], kind="mean_ms"), True
        marks = ((f"({f['origin']})",) if f["origin"] != "measured" else ()) + (("noisy",) if f["noisy"] else ())
        noisy |= f["noisy"]
        values["status"] = Cell(f["status"], marks, STATUS_TONES.get(f["status"], "bad"))
        values["ci"] = (f["ci95_low_ms"], f["ci95_high_ms"]) if f["ci95_low_ms"] is not None else None
        values["compile"] = Cell((f["compile_ms"], f["compile_warm_ms"]), (REUSED_MARK,) if f["compile_cold_reused"]
                                 else ()) if f["compile_ms"] is not None else None
        reused |= bool(f["compile_cold_reused"])
        values["link"] = Cell(f"#{f['run']}", link=Link("run", (("run_id", f["run"]),)))
        values["history"] = Cell("history", link=Link("history_page", tuple(run.series.items()))) if (
            f["origin"] == "measured") else None
        rows.append(Row(values))
    notes = (([f"{MEAN_ONLY} mean: the vendor tool reported no median"] if mean_only else [])
             + ([NOISY_NOTE] if noisy else []) + ([FOOTPRINT_NOTE] if costs else [])
             + ([AGREEMENT_NOTE] if agreement else []) + ([COMPILE_NOTE] if compiled else [])
             + ([REUSED_NOTE] if reused else []))
    return Table("runs", title, columns, rows, notes)

