"""A short markdown summary of what the database says: latencies, claims, where the time goes."""
from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timezone

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from .analysis.claims import check_all
from .analysis.compiled import compiled_vs_eager
from .analysis.compare import Comparison, compare
from .analysis.delegation import delegation
from .analysis.explain import breakdown, kernels
from .published import PUBLISHED_HOST_PREFIX
from .analysis.layers import layer_table
from .analysis.precision import effects as precision_effects
from .analysis.precision import verdicts_by_precision
from .report import fmt_compile_seconds, fmt_cosine, fmt_ms, fmt_share
from .spec import model_sort_key
from .store import Host, Run, Sweep, latest_repeats, read_only_query


def cpu_slug(cpu_model: str) -> str:
    text = re.sub(r"\((r|tm)\)|cpu|@.*$|\d+-core processor", "", cpu_model.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown-cpu"


def render(engine, resolution_of) -> tuple[str, str]:
    """(markdown, cpu slug) for the host with the most runs."""
    with Session(engine) as session:
        runs = session.scalars(select(Run).where(Run.imported.is_(False), Run.published.is_(False))
                               .order_by(Run.id)).all()
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
        latest = {}  # (model, form, target) -> the medians of the latest sweep's processes
        for group in latest_repeats(session, Run.host_id == host.id, Run.batch == 1, Run.imported.is_(False),
                                    Run.published.is_(False), Run.precision == "fp32",
                                    Run.device != "gpu"):  # other precisions and GPUs: their own sections
            r = group[-1]
            if r.resolution == resolution_of(r.model) and all(x.median_ms for x in group):
                latest[(r.model, r.form, r.target)] = [x.median_ms for x in group]  # several: the newest
    models = sorted({m for m, _, _ in latest}, key=model_sort_key)
    targets = sorted({t for _, _, t in latest})
    lines = [f"# Findings on {host.cpu_model}", "",
             f"{host.logical_cores} logical cores, {env.get('threads')} threads per runtime, {host.os}; "
             f"generated {datetime.now(timezone.utc):%Y-%m-%d} from {len(runs)} runs. Versions: "
             + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + ".", "",
             "Produced by:", "", "```"]
    every_check = check_all(engine)
    # this host's CPU (and attached devices'); GPUs have a section of their own, per GPU
    checks = [c for c in every_check if c.host in (host.hostname, "—") and c.device != "gpu"]
    compiled = compiled_vs_eager(engine)
    peaks = read_only_query(engine, f"SELECT COUNT(*) FROM host_peaks WHERE host_id = {host.id}")[1][0][0]
    lines += [s.command for s in sweeps] + (["harness peak --device cpu"] if peaks else []) + [
        "harness findings", "```", ""]
    lines += _layer_section(engine, resolution_of)
    lines += ["## In short", ""] + _summary(latest, models, targets, checks, engine, resolution_of) + [
        "", "How to read: medians of each run's timed iterations; intervals are 95% bootstrap intervals. A "
        "claim row with `runs` 3+3 resamples whole processes (`--repeats 3`): on this shared 2-vCPU machine "
        "a fresh process of the same runtime can land 20-50% away from the last, so single-run intervals "
        "(1+1) are too narrow and their verdicts are fragile.", "",
        "## Median latency, fused form, batch 1 (ms)", "",
                                            "| model | res | " + " | ".join(targets) + " | fastest |",
                                            "|---|---|" + "---|" * (len(targets) + 1)]
    for m in models:
        medians = {t: latest[(m, "reparam", t)] for t in targets if (m, "reparam", t) in latest}
        if not medians:
            continue
        valid = {t: float(np.median(v)) for t, v in medians.items()}
        best = min(valid, key=valid.get) if len(valid) > 1 else "—"
        lines.append(f"| {m} | {resolution_of(m)} | " + " | ".join(_latency_cell(medians.get(t)) for t in targets)
                     + f" | {best} |")
    # verdicts resting on several processes per side first: they survive a noisy machine
    shown = sorted((c for c in checks if c.verdict != "not enough data" or c.target == "—"),
                   key=lambda c: c.single_process)
    lines += ["", "## The paper's claims on this CPU", ""] + ([
        "| claim | protocol | runs | speedup (95% CI) | paper (mobile / GPU) | verdict |",
        "|---|---|---|---|---|---|"] if shown else [
        "No claim has valid runs of both its models on one target here; `harness claims` says which run each "
        "lacks and the command that makes it."])
    lines += [_claim_row(c) for c in shown]
    across = compare(engine, resolution_of)
    lacking = [m for m in across.missing if m.origin == "measured" and m.host == host.hostname]
    if lacking:
        lines += ["", "Not computed here yet, and the command that adds what each lacks:", ""]
        lines += [f"- `{m.claim.key}` needs {' and '.join(f'{n} at {r}px' for n, r in m.models)}: `{m.remedy}`"
                  for m in lacking]
    lines += _published_section(across, host.hostname)
    lines += _compiled_section([r for r in compiled if r.host == host.hostname and r.device != "gpu"], "this CPU")
    lines += _gpu_sections(every_check, compiled)
    lines += _precision_section(engine, checks, host.hostname)
    lines += _footprint_section(engine, resolution_of, host.hostname)
    for model in ("sa12", "t8"):
        found = breakdown(engine, model, resolution_of(model), "reparam", "cpu")
        if not found.targets:
            continue
        lines += ["", f"## Where {model} spends its time (share of profiled time)", "",
                  "| op class | " + " | ".join(t["target"] for t in found.targets) + " |",
                  "|---|" + "---|" * len(found.targets)]
        for row in found.rows[:8]:
            lines.append(f"| {row['op_class']} | " + " | ".join(f"{c['share']:.0%}" if c else "—"
                                                              for c in row["cells"]) + " |")
    lines += _kernel_section(engine, "t8", resolution_of("t8"))
    lines += _coverage_section(engine, resolution_of)
    roof = _roofline(engine, "sa12")
    if any(pct is not None for cells in roof.values() for _, pct in cells.values()):  # needs `harness peak`
        lines += ["", "## Roofline for sa12: achieved GFLOP/s per op class (% of this host's best dense GEMM)", "",
                  "| target | " + " | ".join(ROOF_CLASSES) + " |", "|---|" + "---|" * len(ROOF_CLASSES)]
        for target, cells in sorted(roof.items()):
            lines.append(f"| {target} | " + " | ".join(
                f"{cells[c][0]:.0f} ({cells[c][1]:.0f}%)" if c in cells and cells[c][1] is not None else "—"
                for c in ROOF_CLASSES) + " |")
    return "\n".join(lines) + "\n", cpu_slug(host.cpu_model)


CONV_CLASSES = ("conv_dw_7x7", "conv_dw_3x3", "conv_pointwise", "conv_dense")


METRIC_ORDER = ("latency", "load", "memory", "size")  # the columns of the footprint table


def _claim_row(c) -> str:
    ci = f" ({c.low:.2f}-{c.high:.2f})" if c.low is not None else ""
    paper = " / ".join(("as fast" if where in c.claim.as_fast_on else f"{f}x") if f else "—"
                       for where, f in (("mobile", c.claim.paper_mobile), ("gpu", c.claim.paper_gpu)))
    speed = f"{c.speedup:.2f}x{ci}" if c.speedup else "—"
    runs = "{}+{}".format(*c.runs) if c.runs[0] else "—"
    return f"| {c.claim.key} | {c.protocol} | {runs} | {speed} | {paper} | {c.verdict} |"


def _compiled_section(rows: list, where: str) -> list[str]:
    """torch.compile beside eager torch on one device: steady-state latency, and what compiling cost."""
    if not rows:
        return []
    lines = ["", f"## Compiled PyTorch on {where}", "",
             "torch.compile (inductor) against eager torch on the same spec and precision; compile: seconds before "
             "the first timed inference, cold (an empty inductor cache) / warm (from that cache).", "",
             "| model | res | batch | precision | target | eager ms | compiled ms | speedup | compile s | breaks |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cost = fmt_compile_seconds(r.compile_ms, r.compile_warm_ms)
        lines.append(f"| {r.model} | {r.resolution} | {r.batch} | {r.precision} | {r.target} | {fmt_ms(r.eager_ms)} | "
                     f"{fmt_ms(r.compiled_ms)} | {f'{r.speedup:.2f}x' if r.speedup else '—'} | {cost} | "
                     f"{r.graph_breaks if r.graph_breaks is not None else '—'} |")
    return lines


def _gpu_sections(checks: list, compiled: list) -> list[str]:
    """Per GPU seen (host and device name): every claim per protocol, the paper's own first; eager beside compiled."""
    lines = []
    gpus = {(r.host, r.gpu) for r in compiled if r.device == "gpu"}
    gpus |= {(c.host, None) for c in checks if c.device == "gpu" and not any(h == c.host for h, _ in gpus)}
    for host, gpu in sorted(gpus, key=str):
        here = sorted((c for c in checks if c.device == "gpu" and c.host == host and c.verdict != "not enough data"),
                      key=lambda c: (not c.paper_protocol, c.claim.key, c.precision, c.batch, c.target))
        lines += ["", f"## The paper's claims on the GPU: {gpu or 'a CUDA device'} ({host})", "",
                  "The paper timed its GPU claims with TensorRT in fp16 at batch 8 on an RTX 2080 Ti; each verdict "
                  "here names the protocol it rests on (the paper's marked), eager and compiled.", ""]
        lines += (["| claim | protocol | runs | speedup (95% CI) | paper (mobile / GPU) | verdict |",
                   "|---|---|---|---|---|---|"] + [_claim_row(c) for c in here]) if here else [
            "No claim has valid runs of both its models at one protocol on this GPU yet: "
            "`harness run --device gpu --protocol paper` makes the paper's."]
        lines += _compiled_section([r for r in compiled if r.host == host and r.device == "gpu"],
                                   f"the GPU ({gpu or 'CUDA'})")
    return lines


def _precision_section(engine, checks, hostname: str) -> list[str]:
    """What int8 and half precision buy and cost on this host: each runtime's low-precision run beside its fp32
    run, with agreement and the share of FLOPs it really computes in int8; and the claims under that precision."""
    found = [e for e in precision_effects(engine) if e.host == hostname]
    if not found:
        return []
    isa = read_only_query(engine, f"SELECT isa FROM hosts WHERE hostname = '{hostname.replace(chr(39), '')}'")[1]
    lines = ["", "## Lower precision: what it buys, what it costs", "",
             f"This CPU's instruction set: {isa[0][0] or 'not recorded'}. Speedup: fp32 median / low-precision "
             "median on the same runtime. Agreement: against fp32 torch on held-out photographs (top-1 matches, "
             "mean logit cosine). int8 FLOPs: the share the runtime's own view of the artifact computes in int8.", "",
             "| model | target | precision | fp32 ms | ms | speedup | top-1 agree | cosine | int8 FLOPs "
             "| kept in float |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for e in found:
        lines.append(
            f"| {e.model} | {e.target} | {e.precision}{' (inaccurate)' if e.status != 'ok' else ''} | "
            f"{fmt_ms(e.fp32_ms)} | {fmt_ms(e.low_ms)} | {f'{e.speedup:.2f}x' if e.speedup else '—'} | "
            f"{fmt_share(e.agreement_top1)} | {fmt_cosine(e.agreement_cosine)} | {fmt_share(e.flop_share)} | "
            f"{', '.join(e.kept_float) or '—'} |")
    verdicts = [v for v in verdicts_by_precision(checks) if v.host == hostname]
    if verdicts:
        lines += ["", "The paper's claims in fp32 and in the precision a device would ship:", "",
                  "| claim | target | precision | fp32 | that precision |", "|---|---|---|---|---|"]
        lines += [f"| {v.claim} | {v.target} | {v.precision} | {v.fp32} | "
                  f"{'**' + v.low + '**' if v.changed else v.low} |" for v in verdicts]
    return lines


def _footprint_section(engine, resolution_of, hostname: str) -> list[str]:
    """Per model and runtime here, what it costs besides latency: load time, the model's own peak memory,
    the artifact's size (harness compare --metric load|memory|size)."""
    found = {metric: compare(engine, resolution_of, metric) for metric in METRIC_ORDER}
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for metric, comparison in found.items():
        for (model, column), value in comparison.values.items():
            if column.origin == "measured" and column.host == hostname:
                cells.setdefault((model, column.target), {})[metric] = value
    rows = [(model, target, figures) for (model, target), figures in cells.items()
            if "load" in figures or "memory" in figures]
    if not rows:
        return []
    rows.sort(key=lambda r: (model_sort_key(r[0]), r[1]))
    return ["", "## Besides latency: load time, memory, size", "",
            "Load: the artifact loaded until it can run; memory: the model's own share of the process's peak "
            "(above what the process held before loading); size: the artifact on disk.", "",
            "| model | target | median ms | load ms | memory MiB | artifact MB |", "|---|---|---|---|---|---|",
            *(f"| {model} | {target} | " + " | ".join(fmt_ms(figures.get(m)) for m in METRIC_ORDER) + " |"
              for model, target, figures in rows)]


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
        factor = ", ".join(f"{ours[best] / t:.1f}x" for t in theirs if t)
        rows.append(f"| {model} | " + " | ".join(fmt_ms(t) for t in theirs)
                    + f" | {fmt_ms(ours[best])} ({best}) | {factor} |")
    if not rows:
        return []  # nothing timed here at the published figures' resolution
    return ["", "## Beside the published figures (ms)", "",
            "| model | " + " | ".join(f"{c.host.removeprefix(PUBLISHED_HOST_PREFIX)} {c.target} (published)"
                                    for c in published) + " | fastest here | here / published |",
            "|---|" + "---|" * (len(published) + 2), *rows]


def _layer_section(engine, resolution_of) -> list[str]:
    """First, where a runtime loses time: layers timed alone (`harness layers`) that one target runs
    2x or more slower than the best target here, largest share of that target's time first."""
    lines = []
    for model in ("t8", "s12", "sa12"):
        table = layer_table(engine, model, resolution_of(model), "reparam", "cpu")
        outliers = table.outliers()
        if not table.rows:
            continue
        lines += [f"## Where runtimes lose time on {model}: layers timed alone (`harness layers`)", ""]
        by_class: dict[tuple[str, str, str], list] = {}
        for o in outliers:
            by_class.setdefault((o.target, o.op_class, o.best_target), []).append(o)
        groups = sorted(by_class.items(), key=lambda kv: -sum(o.share for o in kv[1]))
        # the ones that matter: at least 3% of that target's time, the six largest
        for (target, cls, best), found in [g for g in groups if sum(o.share for o in g[1]) >= 0.03][:6]:
            ratios = [o.ratio for o in found]
            lines.append(f"- **{target} runs {cls} layers {min(ratios):.1f}-{max(ratios):.1f}x slower than {best}**; "
                         f"they are {sum(o.share for o in found):.0%} of {model}'s sum of layers on {target}.")
        if not outliers:
            lines.append("- No layer is 2x slower on one target than on the best one here.")
        lines += ["", "| layer (count) | " + " | ".join(table.targets) + " |", "|---|" + "---|" * len(table.targets)]
        for row in table.rows[:12]:
            lines.append(f"| {row.signature} ({row.count}) | " + " | ".join(
                f"{net:.3f}" if (net := row.net_ms(t, table.overhead)) is not None else "—" for t in table.targets)
                + " |")
        lines.append("| sum of layers / whole model | " + " | ".join(
            f"{table.sum_ms(t):.1f} / {table.whole_ms[t]:.1f} ms" if t in table.whole_ms else f"{table.sum_ms(t):.1f} / —"
            for t in table.targets) + " |")
        lines += ["", "ms per call less each runtime's empty-model overhead ("
                  + ", ".join(f"{t} {ms:.3f} ms" for t, ms in table.overhead.items()) + ").", ""]
    return lines


def _kernel_section(engine, model: str, resolution: int) -> list[str]:
    """Which of its own operators each runtime runs FastViT's convolutions with, and what they cost."""
    found = kernels(engine, model, resolution, "reparam", "cpu", CONV_CLASSES)
    if not found:
        return []
    shares = breakdown(engine, model, resolution, "reparam", "cpu")
    profiled = {t["target"]: sum(row["cells"][i]["ms"] for row in shares.rows if row["cells"][i])
                for i, t in enumerate(shares.targets)}
    lines = ["", f"## How each runtime runs {model}'s convolutions (profiled ms per inference, share of profile)", "",
             "| target | " + " | ".join(CONV_CLASSES) + " |", "|---|" + "---|" * len(CONV_CLASSES)]
    for target, per_class in found.items():
        whole = profiled.get(target, 0.0)
        cells = []
        for cls in CONV_CLASSES:
            types = per_class.get(cls, [])
            ms = sum(t[2] for t in types)
            cells.append("; ".join(f"{n} x {t}" for t, n, _ in types) + (f": {ms:.2f} ms ({ms / whole:.0%})"
                                                                          if types and whole else "") or "—")
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    return lines


def _coverage_section(engine, resolution_of) -> list[str]:
    """Per model and delegating backend: how much of the graph the delegate took, and what it left."""
    lines = []
    for model in ("t8", "sa12"):
        found = delegation(engine, model, resolution_of(model), "reparam")
        if not found:
            continue
        if not lines:
            lines = ["", "## Delegation coverage (ExecuTorch partitioners; `harness coverage`)", "",
                     "| model | backend | nodes delegated | FLOPs delegated | left on portable kernels |",
                     "|---|---|---|---|---|"]
        for b in found:
            lines.append(f"| {model} | {b.backend} | {b.delegated_nodes} of {b.nodes} | {b.flop_share:.1%} | "
                         f"{', '.join(b.left) or '—'} |")
    return lines


ROOF_CLASSES = ("conv_pointwise", "conv_dw_7x7", "conv_dw_3x3", "conv_dense", "linear", "attention_matmul")


def _roofline(engine, model: str) -> dict[str, dict[str, tuple[float, float | None]]]:
    _, rows = read_only_query(engine, "SELECT target, op_class, achieved_gflops, percent_of_peak "
                                      f"FROM roofline_by_class WHERE model = '{model}' AND form = 'reparam'")
    found: dict[str, dict] = defaultdict(dict)
    for target, op_class, gflops, pct in rows:
        found[target][op_class] = (gflops, pct)
    return found


def _latency_cell(medians: list[float] | None) -> str:
    """One process: its median; several (--repeats): the median of their medians, their range and count."""
    if not medians:
        return fmt_ms(None)
    if len(medians) == 1:
        return fmt_ms(medians[0])
    return f"{fmt_ms(float(np.median(medians)))} ({min(medians):.2f}-{max(medians):.2f}, {len(medians)} runs)"


def _summary(latest, models, targets, checks, engine, resolution_of) -> list[str]:
    """A few sentences computed from the tables below."""
    out = []
    fastest = defaultdict(list)
    for m in models:
        valid = {t: float(np.median(latest[(m, "reparam", t)])) for t in targets if (m, "reparam", t) in latest}
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
        if key.startswith("reparam_"):
            continue
        out.append(f"- `{key}` holds on {', '.join(verdicts['holds']) or 'no target'}; does not hold on "
                   f"{', '.join(verdicts['does not hold']) or 'no target'}.")
    if reparam:
        holds = [c for c in reparam if c.verdict == "holds"]
        out.append(f"- The fused (reparameterized) form is significantly faster than the training form on "
                   f"{len(holds)} of {len(reparam)} (variant, runtime) pairs measured; speedups "
                   f"{min(c.speedup for c in reparam):.2f}x-{max(c.speedup for c in reparam):.2f}x.")
    dw = {t: classes["conv_dw_7x7"] for t, classes in kernels(engine, "t8", resolution_of("t8"), "reparam", "cpu",
                                                              ("conv_dw_7x7",)).items() if "conv_dw_7x7" in classes}
    if len(dw) > 1:  # the large-kernel depthwise convolutions: the slowest runtime's kernels against the rest
        ms = {t: sum(x[2] for x in types) for t, types in dw.items()}
        slow = max(ms, key=ms.get)
        others = [v for t, v in ms.items() if t != slow]
        out.append(f"- t8's {sum(x[1] for x in dw[slow])} 7x7 depthwise convolutions cost {ms[slow]:.1f} ms per "
                   f"inference on **{slow}** (run as {', '.join(x[0] for x in dw[slow])}), against "
                   f"{min(others):.1f}-{max(others):.1f} ms on the other runtimes (profiled times).")
    found = breakdown(engine, "sa12", resolution_of("sa12"), "reparam", "cpu")
    if found.rows:
        top = found.rows[0]
        shares = [f"{c['share']:.0%} on {t['target']}" for t, c in zip(found.targets, top["cells"]) if c]
        out.append(f"- SA12's largest op class is {top['op_class']}: {', '.join(shares)}.")
    return out
