"""`harness findings`: what the database says about the busiest host, as markdown. Each section renders a table
model (or a result) of the analysis layer; the tables are the same the terminal and the dashboard draw."""
from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timezone

from ..analysis.claims import check_all
from ..analysis.compare import Comparison, compare
from ..analysis.compiled import compiled_vs_eager
from ..analysis.delegation import delegation
from ..analysis.explain import breakdown, kernels
from ..analysis.host import HostRecord, busiest_host, roofline
from ..analysis.layers import layer_table
from ..analysis.precision import effects as precision_effects
from ..analysis.precision import verdicts_by_precision
from ..analysis.record import record
from ..spec import model_sort_key
from . import formats, markdown
from .breakdown import breakdown_table
from .claims import claims_table, record_table
from .compare import lacking
from .coverage import delegation_summary_table
from .layers import layers_table
from .table import Cell, Column, Row, Table, table

CONV_CLASSES = ("conv_dw_7x7", "conv_dw_3x3", "conv_pointwise", "conv_dense")
ROOF_CLASSES = ("conv_pointwise", "conv_dw_7x7", "conv_dw_3x3", "conv_dense", "linear", "attention_matmul")
METRIC_ORDER = ("latency", "load", "memory", "size")  # the columns of the footprint table
HOW_TO_READ = ("How to read: medians of each run's timed iterations; intervals are 95% bootstrap intervals. A "
               "claim row with `runs` 3+3 resamples whole processes (`--repeats 3`): on this shared 2-vCPU machine "
               "a fresh process of the same runtime can land 20-50% away from the last, so single-run intervals "
               "(1+1) are too narrow and their verdicts are fragile.")


def cpu_slug(cpu_model: str) -> str:
    text = re.sub(r"\((r|tm)\)|cpu|@.*$|\d+-core processor", "", cpu_model.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown-cpu"


def render(engine, resolution_of) -> tuple[str, str]:
    """(markdown, cpu slug) for the host with the most runs. ValueError where this harness stored none."""
    host = busiest_host(engine, resolution_of)
    lines = [f"# Findings on {host.cpu_model}", "",
             f"{host.logical_cores} logical cores, {host.threads} threads per runtime, {host.os}; "
             f"generated {datetime.now(timezone.utc):%Y-%m-%d} from {host.runs} runs. Versions: "
             + ", ".join(f"{k} {v}" for k, v in sorted(host.versions.items())) + ".", "",
             "Produced by:", "", "```", *host.commands, *(["harness peak --device cpu"] if host.has_peaks else []),
             "harness findings", "```", ""]
    every_check = check_all(engine)
    # this host's CPU (and attached devices'); GPUs have a section of their own, per GPU
    checks = [c for c in every_check if c.host in (host.hostname, "—") and c.device != "gpu"]
    compiled = compiled_vs_eager(engine)
    across = compare(engine, resolution_of)
    lines += _layer_sections(engine, resolution_of)
    lines += ["## In short", "", *_summary(host, checks, engine, resolution_of), "", HOW_TO_READ, "",
              "## Median latency, fused form, batch 1 (ms)", "", *markdown.render(_latency_table(host, resolution_of))]
    # verdicts resting on several processes per side first: they survive a noisy machine
    shown = sorted((c for c in checks if c.verdict != "not enough data" or c.target == "—"),
                   key=lambda c: c.single_process)
    lines += ["", "## The paper's claims on this CPU", ""]
    lines += markdown.render(claims_table(shown)) if shown else [
        "No claim has valid runs of both its models on one target here; `harness claims` says which run each "
        "lacks and the command that makes it."]
    here = lacking([m for m in across.missing if m.origin == "measured" and m.host == host.hostname], one_host=True)
    if here:
        lines += ["", "Not computed here yet, and the command that adds what each lacks:", ""]
        lines += markdown.lacking(here)
    lines += _published_section(across, host.hostname)
    lines += _record_section(every_check)
    lines += _compiled_section([r for r in compiled if r.host == host.hostname and r.device != "gpu"], "this CPU")
    lines += _gpu_sections(every_check, compiled)
    lines += _precision_section(engine, checks, host)
    lines += _ship_section(engine, host.hostname)
    lines += _footprint_section(engine, resolution_of, host.hostname)
    for model in ("sa12", "t8"):
        found = breakdown(engine, model, resolution_of(model), "reparam", "cpu")
        if found.targets:
            lines += ["", f"## Where {model} spends its time (ms per inference, share of profiled time)", "",
                      *markdown.render(breakdown_table(found, model, "reparam", resolution_of(model), limit=8))]
    lines += _kernel_section(engine, "t8", resolution_of("t8"))
    lines += _coverage_section(engine, resolution_of)
    lines += _roofline_section(engine, "sa12")
    return "\n".join(lines) + "\n", cpu_slug(host.cpu_model)


def _latency_table(host: HostRecord, resolution_of) -> Table:
    """Each model's median per target (several processes: their median, range and count), and the fastest."""
    rows = []
    for m in host.models:
        medians = {t: host.latest[(m, "reparam", t)] for t in host.targets if (m, "reparam", t) in host.latest}
        if not medians:
            continue
        valid = {t: host.median(m, t) for t in medians}
        best = min(valid, key=valid.get) if len(valid) > 1 else None
        rows.append({"model": m, "res": resolution_of(m), **{t: medians.get(t) for t in host.targets},
                     "fastest": best})
    return table("latency", "median latency, fused form, batch 1 (ms)",
                 [Column("model", label=True), Column("res", kind="count"),
                  *(Column(t, kind="processes") for t in host.targets), Column("fastest")], rows)


def _summary(host: HostRecord, checks, engine, resolution_of) -> list[str]:
    """A few sentences computed from the tables below."""
    out = []
    fastest = defaultdict(list)
    for m in host.models:
        valid = {t: host.median(m, t) for t in host.targets if (m, "reparam", t) in host.latest}
        if len(valid) > 1 and not m.startswith("timm:"):  # "fastest" of one runtime says nothing
            fastest[min(valid, key=valid.get)].append(m)
    for target, ms in fastest.items():
        out.append(f"- Fastest runtime for FastViT {', '.join(ms)}: **{target}**.")
    by_claim = defaultdict(lambda: defaultdict(list))
    for c in checks:
        if c.verdict != "not enough data":
            by_claim[c.claim.key][c.verdict].append(c.target)
    reparam = [c for c in checks if c.claim.key.startswith("reparam_") and c.verdict != "not enough data"]
    for key, verdicts in by_claim.items():
        if not key.startswith("reparam_"):
            out.append(f"- `{key}` holds on {', '.join(verdicts['holds']) or 'no target'}; does not hold on "
                       f"{', '.join(verdicts['does not hold']) or 'no target'}.")
    if reparam:
        holds = [c for c in reparam if c.verdict == "holds"]
        out.append(f"- The fused (reparameterized) form is significantly faster than the training form on "
                   f"{len(holds)} of {len(reparam)} (variant, runtime) pairs measured; speedups "
                   f"{formats.ratio(min(c.speedup for c in reparam))}-{formats.ratio(max(c.speedup for c in reparam))}.")
    dw = {t: classes["conv_dw_7x7"] for t, classes in kernels(engine, "t8", resolution_of("t8"), "reparam", "cpu",
                                                              ("conv_dw_7x7",)).items() if "conv_dw_7x7" in classes}
    if len(dw) > 1:  # the large-kernel depthwise convolutions: the slowest runtime's kernels against the rest
        ms = {t: sum(x[2] for x in types) for t, types in dw.items()}
        slow = max(ms, key=ms.get)
        others = [v for t, v in ms.items() if t != slow]
        out.append(f"- t8's {sum(x[1] for x in dw[slow])} 7x7 depthwise convolutions cost {formats.ms(ms[slow], 1)} "
                   f"ms per inference on **{slow}** (run as {', '.join(x[0] for x in dw[slow])}), against "
                   f"{formats.ms(min(others), 1)}-{formats.ms(max(others), 1)} ms on the other runtimes (profiled "
                   "times).")
    found = breakdown(engine, "sa12", resolution_of("sa12"), "reparam", "cpu")
    if found.rows:
        top = found.rows[0]
        shares = [f"{formats.share(c['share'])} on {t['target']}" for t, c in zip(found.targets, top["cells"]) if c]
        out.append(f"- SA12's largest op class is {top['op_class']}: {', '.join(shares)}.")
    return out


def _layer_sections(engine, resolution_of) -> list[str]:
    """First, where a runtime loses time: layers timed alone (`harness layers`) that one target runs 2x or more
    slower than the best target here, largest share of that target's time first."""
    lines = []
    for model in ("t8", "s12", "sa12"):
        found = layer_table(engine, model, resolution_of(model), "reparam", "cpu")
        if not found.rows:
            continue
        lines += [f"## Where runtimes lose time on {model}: layers timed alone (`harness layers`)", ""]
        for g in found.outlier_groups():
            lines.append(f"- **{g.target} runs {g.op_class} layers {formats.decimal(min(g.ratios), 1)}-"
                         f"{formats.ratio(max(g.ratios), 1)} slower than {g.best_target}**; they are "
                         f"{formats.share(g.share)} of {model}'s sum of layers on {g.target}.")
        if not found.outliers():
            lines.append("- No layer is 2x slower on one target than on the best one here.")
        lines += ["", *markdown.render(layers_table(found, model, resolution_of(model), limit=12)), ""]
    return lines


def _record_section(checks) -> list[str]:
    """Per claim and kind of device, on how many devices anyone has numbers of it holds, and which."""
    cells = record(checks)
    if not any(c.devices for c in cells):
        return []
    published = sorted({c.host.removeprefix("published: ") for c in checks if c.origin == "published"})
    return ["", "## The published record", "",
            "Every device with numbers of both models of a claim: measured here, imported from vendor logs, and "
            f"published ({', '.join(published) or 'none stored yet: `harness published --timm`, `--aihub`'}). "
            "Published tables that timed the training forms (timm's benchmark without `--reparam`; the form is "
            "read from each row's parameter count) are judged as such and say so in their protocol.", "",
            *markdown.render(record_table(cells))]


def _compiled_section(rows: list, where: str) -> list[str]:
    """torch.compile beside eager torch on one device: steady-state latency, and what compiling cost."""
    if not rows:
        return []
    found = table("compiled", "", [Column("model"), Column("res", kind="count"), Column("batch", kind="count"),
                                   Column("precision"), Column("target"), Column("eager_ms", "eager ms", "ms"),
                                   Column("compiled_ms", "compiled ms", "ms"), Column("speedup", kind="ratio"),
                                   Column("compile", "compile s", "compile"), Column("breaks", kind="count")],
                  [(r.model, r.resolution, r.batch, r.precision, r.target, r.eager_ms, r.compiled_ms, r.speedup,
                    Cell((r.compile_ms, r.compile_warm_ms), ("reused",) if r.cold_reused else ()), r.graph_breaks)
                   for r in rows])
    return ["", f"## Compiled PyTorch on {where}", "",
            "torch.compile (inductor) against eager torch on the same spec and precision; compile: seconds before "
            "the first timed inference, cold (an empty inductor cache) / warm (from that cache); reused: the cold "
            "compile measured once by an earlier run of the same model, versions and mode, and kept.", "",
            *markdown.render(found)]


def _gpu_sections(checks: list, compiled: list) -> list[str]:
    """Per GPU seen (host and device name): every claim per protocol, the paper's own first; eager beside compiled."""
    lines = []
    gpus = {(r.host, r.gpu) for r in compiled if r.device == "gpu"}
    gpus |= {(c.host, None) for c in checks if c.device == "gpu" and c.origin != "published"
             and not any(h == c.host for h, _ in gpus)}  # published GPUs: the published record
    for host, gpu in sorted(gpus, key=str):
        here = sorted((c for c in checks if c.device == "gpu" and c.host == host and c.verdict != "not enough data"),
                      key=lambda c: (not c.paper_protocol, c.claim.key, c.precision, c.batch, c.target))
        lines += ["", f"## The paper's claims on the GPU: {gpu or 'a CUDA device'} ({host})", "",
                  "The paper timed its GPU claims with TensorRT in fp16 at batch 8 on an RTX 2080 Ti; each verdict "
                  "here names the protocol it rests on (the paper's marked), eager and compiled.", ""]
        lines += markdown.render(claims_table(here)) if here else [
            "No claim has valid runs of both its models at one protocol on this GPU yet: "
            "`harness run --device gpu --protocol paper` makes the paper's."]
        lines += _compiled_section([r for r in compiled if r.host == host and r.device == "gpu"],
                                   f"the GPU ({gpu or 'CUDA'})")
    return lines


def _precision_section(engine, checks, host: HostRecord) -> list[str]:
    """What int8 and half precision buy and cost on this host: each runtime's low-precision run beside its fp32
    run, with agreement and the share of FLOPs it really computes in int8; and the claims under that precision."""
    found = [e for e in precision_effects(engine) if e.host == host.hostname]
    if not found:
        return []
    effects = table("precision", "", [
        Column("model"), Column("target"), Column("precision"), Column("fp32_ms", "fp32 ms", "ms"),
        Column("ms", kind="ms"), Column("speedup", kind="ratio"), Column("top1", "top-1 agree", "share"),
        Column("cosine", kind="cosine"), Column("int8_flops", "int8 FLOPs", "share"),
        Column("kept_float", "kept in float")],
        [(e.model, e.target, e.precision + (" (inaccurate)" if e.status != "ok" else ""), e.fp32_ms, e.low_ms,
          e.speedup, e.agreement_top1, e.agreement_cosine, e.flop_share, list(e.kept_float)) for e in found])
    lines = ["", "## Lower precision: what it buys, what it costs", "",
             f"This CPU's instruction set: {host.isa or 'not recorded'}. Speedup: fp32 median / low-precision "
             "median on the same runtime. Agreement: against fp32 torch on held-out photographs (top-1 matches, "
             "mean logit cosine). int8 FLOPs: the share the runtime's own view of the artifact computes in int8.", "",
             *markdown.render(effects)]
    verdicts = [v for v in verdicts_by_precision(checks) if v.host == host.hostname]
    if verdicts:
        both = table("verdicts-by-precision", "", [Column("claim"), Column("target"), Column("precision"),
                                                   Column("fp32"), Column("low", "that precision")],
                     [Row({"claim": v.claim, "target": v.target, "precision": v.precision,
                           "fp32": Cell(v.fp32, (f"({formats.ratio(v.fp32_speedup)})",) if v.fp32_speedup else ()),
                           "low": Cell(v.low, (f"({formats.ratio(v.low_speedup)})",) if v.low_speedup else (),
                                       "strong" if v.changed else None)}) for v in verdicts])
        lines += ["", "The paper's claims in fp32 and in the precision a device would ship:", "",
                  *markdown.render(both)]
    return lines


def _ship_section(engine, hostname: str) -> list[str]:
    """harness advise's latest recommendation per model on this host, and the headline claims judged at them."""
    from ..analysis.advise import DEFAULT_FLOOR, latest_advice, rejudged_claims
    from .advise import recommendations_table, rejudged_table

    lines = ["", "## How to ship FastViT on this device", ""]
    found = latest_advice(engine, DEFAULT_FLOOR, hostname)
    if not found:
        return lines + ["No `harness advise` session has confirmed a recommendation on this host yet: `harness advise "
                        "--device cpu --model t8 --model s12` searches every target, precision recipe (mixed int8 "
                        "included) and thread count, and proves the fastest by repeated runs."]
    return lines + [f"The fastest confirmed recipe per model that keeps a mean logit cosine of at least "
                    f"{DEFAULT_FLOOR} with fp32 (from each model's latest `harness advise` session):", "",
                    *markdown.render(recommendations_table(found, title="")), "",
                    *markdown.render(rejudged_table(rejudged_claims(found)))]


def _footprint_section(engine, resolution_of, hostname: str) -> list[str]:
    """Per model and runtime here, what it costs besides latency: load time, the model's own peak memory,
    the artifact's size (harness compare --metric load|memory|size)."""
    found = {metric: compare(engine, resolution_of, metric) for metric in METRIC_ORDER}
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for metric, comparison in found.items():
        for (model, column), value in comparison.values.items():
            if column.origin == "measured" and column.host == hostname:
                cells.setdefault((model, column.target), {})[metric] = value
    rows = [(model, target, *(figures.get(m) for m in METRIC_ORDER)) for (model, target), figures in cells.items()
            if "load" in figures or "memory" in figures]
    if not rows:
        return []
    rows.sort(key=lambda r: (model_sort_key(r[0]), r[1]))
    return ["", "## Besides latency: load time, memory, size", "",
            "Load: the artifact loaded until it can run; memory: the model's own share of the process's peak "
            "(above what the process held before loading); size: the artifact on disk.", "",
            *markdown.render(table("footprint", "", [
                Column("model"), Column("target"), Column("median_ms", "median ms", "ms"),
                Column("load_ms", "load ms", "ms"), Column("memory", "memory MiB", "decimal"),
                Column("size", "artifact MB", "decimal")], rows))]


def _published_section(found: Comparison, hostname: str) -> list[str]:
    """This host's fastest runtime per model beside each published device (harness compare's figures),
    or the command that stores the published ones."""
    published = [c for c in found.columns if c.origin == "published"]
    here = [c for c in found.columns if c.origin == "measured" and c.host == hostname]
    if not published:
        return ["", "## Beside the published figures", "", f"{found.hint}; `harness compare` then sets them beside "
                "these runs."] if found.hint else []
    rows = []
    for model in found.models:
        theirs = [found.values.get((model, c)) for c in published]
        ours = {c.target: found.values[(model, c)] for c in here if (model, c) in found.values}
        if not ours or not any(theirs):
            continue
        best = min(ours, key=ours.get)
        rows.append({"model": model, **{f"p{i}": t for i, t in enumerate(theirs)},
                     "fastest": Cell(ours[best], (f"({best})",)), "factor": [ours[best] / t for t in theirs if t]})
    if not rows:
        return []  # nothing timed here at the published figures' resolution
    columns = [Column("model"), *(Column(f"p{i}", f"{c.device_name} {c.target} "
                                              "(published)", "ms") for i, c in enumerate(published)),
               Column("fastest", "fastest here", "ms"), Column("factor", "here / published", "ratio", 1)]
    return ["", "## Beside the published figures (ms)", "", *markdown.render(table("published", "", columns, rows))]


def _kernel_section(engine, model: str, resolution: int) -> list[str]:
    """Which of its own operators each runtime runs FastViT's convolutions with, and what they cost."""
    found = kernels(engine, model, resolution, "reparam", "cpu", CONV_CLASSES)
    if not found:
        return []
    shares = breakdown(engine, model, resolution, "reparam", "cpu")
    profiled = {t["target"]: sum(row["cells"][i]["ms"] for row in shares.rows if row["cells"][i])
                for i, t in enumerate(shares.targets)}
    rows = []
    for target, per_class in found.items():
        whole = profiled.get(target, 0.0)
        cells = {}
        for cls in CONV_CLASSES:
            types = per_class.get(cls, [])
            ms = sum(t[2] for t in types)
            cells[cls] = "; ".join(f"{n} x {t}" for t, n, _ in types) + (
                f": {formats.ms(ms)} ms ({formats.share(ms / whole)})" if types and whole else "") or None
        rows.append({"target": target, **cells})
    return ["", f"## How each runtime runs {model}'s convolutions (profiled ms per inference, share of profile)", "",
            *markdown.render(table("kernels", "", [Column("target"), *(Column(c) for c in CONV_CLASSES)], rows))]


def _coverage_section(engine, resolution_of) -> list[str]:
    """Per model and delegating backend: how much of the graph the delegate took, and what it left."""
    found = [(model, b) for model in ("t8", "sa12") for b in delegation(engine, model, resolution_of(model), "reparam")]
    if not found:
        return []
    return ["", "## Delegation coverage (ExecuTorch partitioners; `harness coverage`)", "",
            *markdown.render(delegation_summary_table([b for _, b in found], [m for m, _ in found]))]


def _roofline_section(engine, model: str) -> list[str]:
    roof = roofline(engine, model)
    if not any(pct is not None for cells in roof.values() for _, pct in cells.values()):  # needs `harness peak`
        return []
    rows = [{"target": target, **{c: (cells[c][0], cells[c][1]) for c in ROOF_CLASSES
                                  if c in cells and cells[c][1] is not None}} for target, cells in sorted(roof.items())]
    return ["", f"## Roofline for {model}: achieved GFLOP/s per op class (% of this host's best dense GEMM)", "",
            *markdown.render(table("roofline", "", [Column("target"), *(Column(c, kind="roof") for c in ROOF_CLASSES)],
                                   rows))]
