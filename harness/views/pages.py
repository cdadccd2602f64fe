"""The pages that hold several tables: everything stored about one model spec, and one run in full. The dashboard
draws them as pages (and answers them as `.json`); `harness show model|run` prints the same tables and, with
`--format json`, the same document."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..analysis import runs as run_data
from ..analysis.delegation import delegation
from ..analysis.explain import Breakdown, breakdown
from ..analysis.layers import LayerTable, layer_table
from ..analysis.precision import coverage as precision_coverage
from ..analysis.samples import InOrder, histograms, in_order
from .breakdown import breakdown_table, two_views_table
from .coverage import delegation_summary_table, delegation_table, precision_coverage_table
from .layers import layers_table, outliers_table
from .runs import runs_table
from .table import Column, Row, Table, table

BASELINE = "torch/cpu"  # what a run's speedup is against, as `harness report` defaults


@dataclass
class ModelPage:
    model: str
    resolution: int
    form: str
    batch: int
    device: str
    resolutions: list[int]
    runs: list[run_data.RunSummary]
    explained: Breakdown
    layers: LayerTable
    tables: dict[str, Table] = field(default_factory=dict)

    @property
    def histogram_runs(self) -> list[run_data.RunSummary]:
        """The valid measured runs, whose timed samples the page draws."""
        return [r for r in self.runs if r.fields["status"] == "ok" and r.fields["origin"] == "measured"]


def model_page(engine, model: str, resolution: int, form: str, batch: int, device: str) -> ModelPage:
    """Latest runs per target, where the time goes, the layers timed alone and the coverage of one model spec."""
    spec = f"{model} at {resolution}px ({form}, batch {batch})"
    runs = run_data.of_spec(engine, model, resolution, form, batch, BASELINE)
    explained = breakdown(engine, model, resolution, form, device)
    layers = layer_table(engine, model, resolution, form, device)
    page = ModelPage(model, resolution, form, batch, device, run_data.resolutions(engine, model), runs, explained,
                     layers)
    found = [runs_table(runs, f"latest run of {spec} per target", links=True),
             breakdown_table(explained, model, form, resolution), layers_table(layers, model, resolution, limit=30),
             outliers_table(layers), delegation_summary_table(delegation(engine, model, resolution, form)),
             precision_coverage_table(precision_coverage(engine, model, resolution, form), model, resolution, form)]
    page.tables = {t.id: t for t in found}
    return page


@dataclass
class RunPage:
    detail: run_data.RunDetail
    ordered: InOrder
    tables: dict[str, Table] = field(default_factory=dict)


def run_page(engine, run_id: int) -> RunPage | None:
    """One run: every stored field, its host, its samples in order, its largest ops and a farm's compute units."""
    detail = run_data.detail(engine, run_id)
    if detail is None:
        return None
    ordered = in_order(engine, run_id)
    units = [{"unit": unit, **facts} for unit, facts in detail.compute_units.items()]
    found = [_facts("run", f"run {run_id}", detail.run), _facts("host", "host", detail.host),
             table("ops", "operator profile (largest first)",
                   [Column("op_name", "op", "command"), Column("op_type", "type"), Column("op_class", "class"),
                    Column("compute_unit", "unit", shown=bool(units)), Column("calls", kind="count"),
                    Column("total_ms", "ms", "ms")], detail.ops),
             table("compute-units", "compute units (the device's own per-layer placement)",
                   [Column("unit"), Column("layers", kind="count"), Column("share", "share of layers", "share", 1),
                    Column("flops_share", "share of FLOPs (est.)", "share", 1), Column("ms", "ms per inference", "ms")],
                   units),
             table("samples", "samples in order", [Column("phase"), Column("iteration", kind="count"),
                                                   Column("ms", kind="ms", digits=3)],
                   [(phase, i, ms) for phase, (iterations, values) in ordered.phases.items()
                    for i, ms in zip(iterations, values)])]
    return RunPage(detail, ordered, {t.id: t for t in found})


def _facts(id: str, title: str, record: dict) -> Table:
    """One record shown as a field per row; its JSON is the record itself."""
    return Table(id, title, [Column("field", label=True), Column("value", kind="blank")],
                 [Row({"field": k, "value": v}) for k, v in record.items()], records_=[record],
                 record_keys=list(record))


def histogram_traces(engine, page: ModelPage) -> list[tuple[str, str, object]]:
    """(label, target, histogram) of each valid measured run of the page, for its chart."""
    found = histograms(engine, [r.fields["run"] for r in page.histogram_runs])
    return [(r.label, r.fields["target"], found[r.fields["run"]]) for r in page.histogram_runs
            if r.fields["run"] in found]


def explain_tables(engine, model: str, resolution: int, form: str, device: str) -> list[Table]:
    """`harness explain`: where the time goes per target (first; empty where no profiled run), beside it the layers
    timed alone, and what the delegates and quantizers took, where stored."""
    explained = breakdown(engine, model, resolution, form, device)
    if not explained.targets:
        return []
    found = [breakdown_table(explained, model, form, resolution)]
    layered = layer_table(engine, model, resolution, form, device)
    if layered.rows:
        found.append(two_views_table(explained, layered))
    delegated = delegation(engine, model, resolution, form)
    if delegated:
        found += [delegation_table(delegated, model, resolution, form), delegation_summary_table(delegated)]
    quantized = precision_coverage(engine, model, resolution, form)
    if quantized:
        found.append(precision_coverage_table(quantized, model, resolution, form))
    return found


def plots(engine, out, model: str, resolution_of, device: str) -> list:
    """`harness plot`: every PNG figure of the database, written into `out`; the paths written."""
    from ..analysis.compare import compare, fused_latencies
    from . import plots as figures  # matplotlib: only when drawing

    latencies = fused_latencies(engine, resolution_of)
    written = [figures.accuracy_vs_latency(latencies, out), figures.latency_by_backend(latencies, out),
               figures.latency_by_device(compare(engine, resolution_of), out),
               figures.op_breakdown(breakdown(engine, model, resolution_of(model), "reparam", device), out, model,
                                    resolution_of(model))]
    return [path for path in written if path]
