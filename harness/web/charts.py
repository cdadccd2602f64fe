"""Plotly figures (plain dicts: data + layout) of the analysis layer's results. The browser draws them with the
plotly.js that the `plotly` package ships, served by the dashboard itself. Each figure only re-shapes a
result computed in harness/analysis; no chart computes a number of its own."""
from __future__ import annotations

import math

from ..analysis.compare import Comparison
from ..analysis.explain import Breakdown
from ..analysis.history import History, band
from ..analysis.samples import Histogram, InOrder
from ..views.palette import op_class_colour, target_colour

FONT = {"family": "system-ui, sans-serif", "size": 12}


def _layout(title: str, **extra) -> dict:
    return {"title": {"text": title, "font": {"size": 14}}, "font": FONT, "margin": {"l": 60, "r": 20, "t": 40,
                                                                                       "b": 60},
            "legend": {"orientation": "h", "y": -0.25}, **extra}


def _log_axis(values, **extra) -> dict:
    """A log axis labelled 1-2-5 in plain numbers where the values span a decade or more (there plotly's own labels
    between decades are lone digits: "2", "5" for 20 and 50, which reads as wrong); within a decade plotly's
    labels are plain and denser."""
    shown = [v for v in values if v is not None and v > 0]
    if not shown or max(shown) < 10 * min(shown):
        return {"type": "log", **extra}
    low, high, ticks, decade = min(shown), max(shown), [], 10.0 ** math.floor(math.log10(min(shown)))
    while decade <= high * 10:
        ticks += [step * decade for step in (1, 2, 5) if low / 2.5 <= step * decade <= high * 2.5]
        decade *= 10
    return {"type": "log", "tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks], **extra}


def overview(found: Comparison) -> dict:
    """Grouped bars: each model's value on each device and target (log scale: targets differ 10x)."""
    data = [{"type": "bar", "name": column.label, "x": found.models, "marker": {"color": target_colour(column.target)},
             "y": [found.values.get((model, column)) for model in found.models]} for column in found.columns]
    return {"data": data, "layout": _layout(f"{found.metric.name} per model, {found.metric.unit}", barmode="group",
                                            yaxis=_log_axis(found.values.values(), title=found.metric.unit))}


def distributions(histograms: list[tuple[str, str, Histogram]]) -> dict:
    """Each latest run's timed samples as a step histogram, one trace per (host, target): its label, its target."""
    data = [{"type": "scatter", "mode": "lines", "line": {"shape": "hvh", "color": target_colour(target)},
             "name": label,
             "x": h.centres_ms, "y": h.counts, "customdata": [h.run_id] * len(h.counts)} for label, target, h in histograms]
    xaxis = _log_axis([x for _, _, h in histograms for x in h.centres_ms], title="ms")
    return {"data": data, "layout": _layout("timed samples per target", xaxis=xaxis,
                                            yaxis={"title": "samples"})}


def breakdown(found: Breakdown) -> dict:
    """Stacked bars: per target, milliseconds per op class (from the run's operator profile)."""
    targets = [t["target"] for t in found.targets]
    data = [{"type": "bar", "name": row["op_class"], "x": targets, "marker": {"color": op_class_colour(row["op_class"])},
             "y": [cell["ms"] if cell else None for cell in row["cells"]]} for row in found.rows]
    return {"data": data, "layout": _layout("where the time goes (operator profile)", barmode="stack",
                                            yaxis={"title": "ms per inference"})}


def samples(found: InOrder) -> dict:
    """A run's samples in the order they were taken: the first call, warm-up, then the timed iterations."""
    data, offset = [], 0
    for phase, (iterations, ms) in found.phases.items():
        data.append({"type": "scattergl" if len(ms) > 2000 else "scatter", "mode": "markers", "name": phase,
                     "marker": {"size": 4}, "x": [offset + i for i in iterations], "y": ms})
        offset += (max(iterations) + 1) if iterations else 0
    title = "samples in order" + (f" (every {found.every}th of {found.total})" if found.every > 1 else "")
    return {"data": data, "layout": _layout(title, xaxis={"title": "call"}, yaxis={"title": "ms"})}


def history(found: History) -> dict:
    """The median of each run with the band a change is judged by, over time; changes beyond it marked."""
    points = found.points
    bands = [band(p) or (p.median_ms, p.median_ms) for p in points]
    trace = {"type": "scatter", "mode": "lines+markers", "name": "median",
             "x": [p.started_at.isoformat() for p in points], "y": [p.median_ms for p in points],
             "customdata": [p.run_id for p in points],
             "error_y": {"type": "data", "symmetric": False, "array": [high - p.median_ms for p, (_, high)
                                                                       in zip(points, bands)],
                         "arrayminus": [p.median_ms - low for p, (low, _) in zip(points, bands)]},
             "marker": {"size": 8, "color": ["#c62828" if p.change == "regression" else "#2e7d32"
                                             if p.change == "improvement" else "#1565c0" for p in points]},
             "text": [p.versions for p in points]}
    title = "median latency per run (its 95% interval, widened by its process spread)"
    return {"data": [trace], "layout": _layout(title, yaxis={"title": "ms"},
                                               xaxis={"title": "started"})}


def claims(checks: list) -> dict:
    """Each check with a speedup: the speedup and its interval, beside the paper's figure there."""
    shown = [c for c in checks if c.speedup is not None]
    labels = [f"{c.claim.label} · {c.host} · {c.protocol}" for c in shown]
    data = [{"type": "scatter", "mode": "markers", "name": "measured speedup", "y": labels,
             "x": [c.speedup for c in shown],
             "error_x": {"type": "data", "symmetric": False,
                         "array": [(c.high - c.speedup) if c.high is not None else 0 for c in shown],
                         "arrayminus": [(c.speedup - c.low) if c.low is not None else 0 for c in shown]}},
            {"type": "scatter", "mode": "markers", "name": "paper's figure there", "y": labels,
             "x": [c.figure[0] for c in shown], "marker": {"symbol": "line-ns-open", "size": 14}}]
    return {"data": data, "layout": _layout("speedup (slower model's latency / the faster's)",
                                            height=max(260, 40 + 28 * len(shown)),
                                            margin={"l": 420, "r": 20, "t": 40, "b": 60},
                                            xaxis=_log_axis([c.speedup for c in shown] + [c.figure[0] for c in shown]
                                                            + [c.low for c in shown] + [c.high for c in shown],
                                                            title="speedup"))}
